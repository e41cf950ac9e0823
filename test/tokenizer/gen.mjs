// Generates test strings and counts their tokens with gpt-tokenizer (the
// reference for the differential test and for the unit tests' golden
// vectors). Output: one JSON object per line, {"text", "o200k_base", "cl100k_base"}.
//
//   node gen.mjs --count N --seed S [--kind mixed|chat|golden|all] [--format json|hex]
//
// --format hex writes "o200k<TAB>cl100k<TAB>hex of the UTF-8 bytes" per line
// instead (what test/unit/tokenizer_test.cpp reads).
//
// The strings avoid the few characters on which gpt-tokenizer's JavaScript
// regex is not tiktoken's Rust regex (agentcache follows tiktoken): U+0085
// and U+FEFF (JavaScript's \s has U+FEFF but not U+0085, Rust's White_Space
// the reverse) and U+017F after an apostrophe (Rust's case-insensitive
// contractions fold ſ to s); and code points assigned after Unicode 15.0 (the
// ICU of Debian 12), by drawing only from blocks complete by then.
import { encode as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { encode as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const COUNT = Number(args.count ?? 1000);
let seed = Number(args.seed ?? 1) >>> 0;
const KIND = args.kind ?? 'all';
const FORMAT = args.format ?? 'json';

// xorshift32: the same strings for the same seed
function rnd() {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));

// [first, last] code point ranges, weighted by repetition
const RANGES = [
  [0x20, 0x7e], [0x20, 0x7e], [0x20, 0x7e], [0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a],
  [0xa0, 0xff], [0x100, 0x17e], [0x180, 0x24f], [0x250, 0x2af], [0x2b0, 0x2ff], [0x300, 0x36f],
  [0x370, 0x3ff], [0x400, 0x4ff], [0x531, 0x556], [0x5d0, 0x5ea], [0x591, 0x5c7], [0x620, 0x64a],
  [0x64b, 0x65f], [0x660, 0x669], [0x900, 0x97f], [0x980, 0x9fe], [0xe01, 0xe5b], [0x10a0, 0x10ff],
  [0x1100, 0x11ff], [0x1e00, 0x1eff], [0x2000, 0x206f], [0x20a0, 0x20c0], [0x2100, 0x214f],
  [0x2150, 0x218b], [0x2190, 0x21ff], [0x2200, 0x22ff], [0x2460, 0x24ff], [0x2500, 0x257f],
  [0x2600, 0x26ff], [0x3000, 0x303f], [0x3041, 0x3096], [0x30a0, 0x30ff], [0x4e00, 0x9fff],
  [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xff01, 0xff5e], [0x1f300, 0x1f5ff], [0x1f600, 0x1f64f],
  [0x1f900, 0x1f9ff], [0x1f3fb, 0x1f3ff], [0x1d400, 0x1d7ff], [0x10400, 0x1044f], [0x20000, 0x2a6df],
];
const SPECIAL = ['\n', '\r\n', '\t', ' ', '  ', '\u00a0', '\u3000', '\u2003', '\u200d', '\ufe0f', "'", "'s", "'LL",
  "'Re", '/', '//', '\u2028', '\r', '\n\n', ' \n ', '123', '1234567', '<|endoftext|>', '\u000b', '\u000c'];
const ASSIGNED = /^[^\p{Cn}\p{Cs}\p{Co}]$/u;

function randomChar() {
  for (;;) {
    const [lo, hi] = pick(RANGES);
    const cp = int(lo, hi);
    if (cp === 0x85 || cp === 0xfeff || cp === 0x17f) continue;
    const ch = String.fromCodePoint(cp);
    if (ASSIGNED.test(ch)) return ch;
  }
}

function mixed() {
  const n = int(1, 48);
  let s = '';
  for (let i = 0; i < n; i++) s += rnd() < 0.2 ? pick(SPECIAL) : randomChar();
  return s;
}

const WORDS = {
  en: ["Hello", "I'm", "booking", "appointment", "tomorrow", "at", "the", "clinic", "Can't", "you're", "WE'LL",
    "doctor", "she'd", "they've", "It's", "price", "is", "$120.50", "please", "confirm", "OK", "thanks!", "URL:",
    "https://example.com/book?id=42&x=y", "e-mail", "user@example.org", "09:30", "2026-12-05", "Dr.", "Smith's"],
  pt: ["Olá", "gostaria", "de", "marcar", "uma", "consulta", "amanhã", "às", "14h", "Obrigado", "clínica",
    "não", "está", "disponível", "coração", "você", "É", "possível", "remarcar?", "R$", "150,00", "ótimo"],
  es: ["¿Hola?", "¡Buenos", "días!", "mañana", "cita", "niño", "pequeño", "Qué", "hora", "está", "bien"],
  de: ["Grüße", "Straße", "Übermorgen", "Termin", "bestätigen", "Größe", "Äpfel", "öffnen"],
  fr: ["Bonjour", "l'hôpital", "c'est", "très", "façon", "où", "Ça", "va", "d'accord", "qu'il"],
  ru: ["Здравствуйте", "записаться", "на", "приём", "завтра", "Спасибо", "врач", "Ёлка"],
  zh: ["你好", "我想", "预约", "明天", "上午", "十点", "谢谢", "医生", "诊所"],
  ja: ["こんにちは", "予約", "したい", "です", "カタカナ", "明日", "ありがとう", "ございます"],
  ar: ["مرحبا", "أريد", "حجز", "موعد", "غدا", "شكرا", "١٢٣"],
  hi: ["नमस्ते", "मुझे", "अपॉइंटमेंट", "चाहिए", "धन्यवाद", "१२३"],
  ko: ["안녕하세요", "예약", "하고", "싶어요", "감사합니다"],
  emoji: ["👍", "🙏🏽", "👨‍👩‍👧‍👦", "❤️", "🏳️‍🌈", "😀😀", "🇧🇷", "✅"],
};
const LANGS = Object.keys(WORDS);
function chat() {
  const turns = int(1, 6);
  const out = [];
  for (let t = 0; t < turns; t++) {
    const lang = pick(LANGS);
    const n = int(1, 25);
    const w = [];
    for (let i = 0; i < n; i++) {
      let word = pick(WORDS[rnd() < 0.8 ? lang : pick(LANGS)]);
      const r = rnd();
      if (r < 0.1) word = word.toUpperCase();
      else if (r < 0.15) word += pick(['.', ',', '!', '?', '...', ':', ';', ')', '"']);
      else if (r < 0.18) word = String(int(0, 10 ** int(1, 9)));
      w.push(word);
    }
    out.push(pick(['', 'user: ', 'assistant: ', '- ', '  ']) + w.join(pick([' ', ' ', ' ', '  ', '\t'])));
  }
  return out.join(pick(['\n', '\n\n', '\r\n', ' \n', '\n  ']));
}

const GOLDEN = [
  '', ' ', 'a', '\n', '\n\n\n', '   \n  \n ', 'Hello, world!', "I'm", "I'M", "I'Ll", "don't DON'T Don'T", "'s 'S 'T 'RE 've 'Ve 'm 'LL 'd",
  "we'll've", "rock'n'roll", "'", "''", "'''s", 'x\'s', '1', '12', '123', '1234', '1234567890', '٣٤٥٦٧', '१२३४५', '½¾',
  'Ⅻ', '一二三四五', 'a1b2c3', '3.14159', '1,000,000', ' 1 22 333 4444', 'e\u0301', 'e\u0301\u0302\u0303', '\u0301abc',
  'Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇', '👍', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇧🇷🇺🇸', '👍🏽', '❤️', 'a\u200db', 'ｆｕｌｌｗｉｄｔｈ',
  'こんにちは、世界！お元気ですか？', '你好，世界', '안녕하세요 세계', 'Привет, мир!', 'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया',
  'გამარჯობა', 'Γειά σου Κόσμε', 'สวัสดีชาวโลก', 'Ἀθῆναι', 'ǅemal ǈubljana', 'ß ẞ ﬁ ﬀ', '𝐇𝐞𝐥𝐥𝐨', '𐐷𐐸',
  '\t\tindented\tcode', 'if (x) {\n    return y;\n}\n', 'def f(x):\r\n    return x\r\n', '<|endoftext|>', '<|im_start|>user',
  'https://example.com/a/b/c?d=e&f=g#h', 'a/b//c///d', '/// comment', 'path\\to\\file', '!!!???...', ' !!! ', '\u00a0\u00a0x',
  '\u3000\u3000日本', 'a\u2028b\u2029c', 'trailing spaces   ', '   leading', 'mixed \t \n \r\n whitespace', '\r\r\r', '\n \n \n',
  'CamelCaseWordsHere', 'ALLCAPSword', 'mIxEd CaSe', 'ǅungla', 'ÉCOLE école', 'ﬁnance', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  '0000000000', '        ', '$$$$$', '😀😀😀😀😀', 'a😀b', 'Olá! Gostaria de marcar uma consulta para amanhã às 14h, é possível?',
];

function golden() {
  return GOLDEN;
}

const opts = { allowedSpecial: new Set(), disallowedSpecial: new Set() };
function emit(text) {
  const a = o200k(text, opts).length;
  const b = cl100k(text, opts).length;
  if (FORMAT === 'hex') process.stdout.write(`${a}\t${b}\t${Buffer.from(text, 'utf8').toString('hex')}\n`);
  else process.stdout.write(JSON.stringify({ text, o200k_base: a, cl100k_base: b }) + '\n');
}

if (KIND === 'golden') {
  for (const t of golden()) emit(t);
} else {
  for (let i = 0; i < COUNT; i++) {
    const k = KIND === 'all' ? (i % 2 === 0 ? 'mixed' : 'chat') : KIND;
    emit(k === 'mixed' ? mixed() : chat());
  }
}
