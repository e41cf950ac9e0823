// Token counts of long inputs with gpt-tokenizer (test/unit/data/onemb.cmake):
//   node onemb.mjs BYTES [A|WORDS|EMOJI|SPACES]
import { encode as o } from 'gpt-tokenizer/encoding/o200k_base';
import { encode as c } from 'gpt-tokenizer/encoding/cl100k_base';
const opts = { allowedSpecial: new Set(), disallowedSpecial: new Set() };
const n = Number(process.argv[2]);
const cases = {
  A: 'a'.repeat(n),
  WORDS: 'Olá, mundo! 123 '.repeat(n / 16),
  EMOJI: '😀'.repeat(n / 4),
  SPACES: ' '.repeat(n),
};
const only = process.argv[3];
for (const [k, t] of Object.entries(cases)) {
  if (only && k !== only) continue;
  const t0 = Date.now();
  console.log(`set(AC_1MB_${k}_O200K ${o(t, opts).length})\nset(AC_1MB_${k}_CL100K ${c(t, opts).length})  # ${Date.now() - t0} ms`);
}
