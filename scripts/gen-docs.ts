// Regenerates the generated sections of README.md (run: npm run docs).
import { readFileSync, writeFileSync } from 'node:fs';
import { renderReadmeSections } from '../src/config/readme.js';

const path = new URL('../README.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = await renderReadmeSections(before);
if (after !== before) {
  writeFileSync(path, after);
  process.stdout.write('README.md updated\n');
} else process.stdout.write('README.md already current\n');
