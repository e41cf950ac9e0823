// gpt-tokenizer's side of bench/tokens.sh: counts every string of a corpus
// (one JSON object with "text" per line) with countTokens (its fastest
// counting call; special-token text as ordinary text) and prints
// "ENCODING SECONDS TOKENS" per encoding. It lives here, next to the
// pinned gpt-tokenizer it imports.
import { readFileSync } from 'node:fs';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';

const texts = readFileSync(process.argv[2], 'utf8').trim().split('\n').map((l) => JSON.parse(l).text);
const opts = { allowedSpecial: new Set(), disallowedSpecial: new Set() };
for (const [name, enc] of [['o200k_base', o200k], ['cl100k_base', cl100k]]) {
  let tokens = 0;
  for (const t of texts.slice(0, 200)) tokens += enc.countTokens(t, opts);  // warm-up (JIT)
  enc.clearMergeCache();
  tokens = 0;
  const t0 = process.hrtime.bigint();
  for (const t of texts) tokens += enc.countTokens(t, opts);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${name} ${s.toFixed(4)} ${tokens}`);
}
