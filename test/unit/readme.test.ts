import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderReadmeSections } from '../../src/config/readme.js';

describe('README', () => {
  it('has current generated sections (run `npm run docs` after changing the schema)', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(await renderReadmeSections(readme)).toBe(readme);
  });

  it('opens with the install-and-run and the test commands', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const firstBlock = readme.slice(
      readme.indexOf('```sh'),
      readme.indexOf('```', readme.indexOf('```sh') + 5),
    );
    expect(firstBlock).toContain('scripts/run-local.sh');
    expect(firstBlock).toContain('.ci/run');
  });
});
