import { listLeaves } from './load.js';

/** Renders the configuration reference (Markdown) from the schema. */
export function renderConfigReference(): string {
  const lines = ['| key | env | flag | default | description |', '| --- | --- | --- | --- | --- |'];
  for (const leaf of listLeaves()) {
    const env = [leaf.env, ...leaf.aliases].map((e) => `\`${e}\``).join(', ');
    const def = JSON.stringify(leaf.defaultValue) ?? '';
    const desc = leaf.enumValues
      ? `${leaf.description} One of: ${leaf.enumValues.map((v) => `\`${v}\``).join(', ')}.`
      : leaf.description;
    lines.push(
      `| \`${leaf.path.join('.')}\` | ${env} | \`${leaf.flag}\` | \`${def.replaceAll('|', '\\|')}\` | ${desc.replaceAll('|', '\\|')} |`,
    );
  }
  return lines.join('\n') + '\n';
}
