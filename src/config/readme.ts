import { renderConfigReference } from './reference.js';

/** A generated README section: a marker name and the function that renders its body. */
export interface GeneratedSection {
  name: string;
  render: () => string | Promise<string>;
}

/** Sections rendered from code alone (the metrics reference needs a running agent). */
export const README_SECTIONS: GeneratedSection[] = [
  { name: 'config-reference', render: renderConfigReference },
];

/** Replaces the body between `<!-- NAME:start -->` and `<!-- NAME:end -->` for every section. */
export async function renderReadmeSections(
  readme: string,
  sections: GeneratedSection[] = README_SECTIONS,
): Promise<string> {
  let out = readme;
  for (const s of sections) {
    const start = `<!-- ${s.name}:start -->`;
    const end = `<!-- ${s.name}:end -->`;
    const a = out.indexOf(start);
    const b = out.indexOf(end);
    if (a < 0 || b < a) throw new Error(`README.md lacks the markers ${start} … ${end}`);
    out = out.slice(0, a + start.length) + '\n' + (await s.render()) + out.slice(b);
  }
  return out;
}
