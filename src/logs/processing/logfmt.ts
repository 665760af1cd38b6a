// A small logfmt parser: `key=value key="quoted value" bare_key`, separated by spaces.
// Quoted values understand \" \\ \n \r \t \/ \uXXXX; an unknown escape keeps the backslash.

export interface LogfmtResult {
  /** Pairs in line order (keys may repeat; the caller decides). Bare keys get value true. */
  pairs: [string, string | true][];
  /** How many tokens had a value (key=value) as opposed to bare keys. */
  valued: number;
}

const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 13 || c === 10;

/**
 * Parses one line; undefined when it is not logfmt (unterminated quote, `=` without a key, a
 * quote inside a key). Never throws. Work is linear in the line length; maxPairs bounds the output
 * (the rest of the line is ignored and `truncated` set).
 */
export function parseLogfmt(
  line: string,
  maxPairs = Infinity,
): (LogfmtResult & { truncated: boolean }) | undefined {
  const pairs: [string, string | true][] = [];
  let valued = 0;
  let i = 0;
  const n = line.length;
  while (i < n) {
    while (i < n && isSpace(line.charCodeAt(i))) i++;
    if (i >= n) break;
    if (pairs.length >= maxPairs) return { pairs, valued, truncated: true };
    const ks = i;
    while (i < n) {
      const c = line.charCodeAt(i);
      if (isSpace(c) || c === 61 /* = */) break;
      if (c === 34 /* " */) return undefined;
      i++;
    }
    if (i === ks) return undefined; // "=value" without a key
    const key = line.slice(ks, i);
    if (i >= n || line.charCodeAt(i) !== 61) {
      pairs.push([key, true]);
      continue;
    }
    i++; // '='
    valued++;
    if (i < n && line.charCodeAt(i) === 34) {
      i++;
      let out = '';
      let seg = i;
      let closed = false;
      while (i < n) {
        const c = line.charCodeAt(i);
        if (c === 34) {
          out += line.slice(seg, i);
          i++;
          closed = true;
          break;
        }
        if (c === 92 /* \ */ && i + 1 < n) {
          out += line.slice(seg, i);
          const e = line[i + 1]!;
          i += 2;
          switch (e) {
            case '"':
            case '\\':
            case '/':
              out += e;
              break;
            case 'n':
              out += '\n';
              break;
            case 'r':
              out += '\r';
              break;
            case 't':
              out += '\t';
              break;
            case 'u': {
              const hex = line.slice(i, i + 4);
              if (/^[0-9a-fA-F]{4}$/.test(hex)) {
                out += String.fromCharCode(parseInt(hex, 16));
                i += 4;
              } else out += '\\u';
              break;
            }
            default:
              out += '\\' + e;
          }
          seg = i;
          continue;
        }
        i++;
      }
      if (!closed) return undefined;
      // A quoted value must be followed by a separator.
      if (i < n && !isSpace(line.charCodeAt(i))) return undefined;
      pairs.push([key, out]);
    } else {
      const vs = i;
      while (i < n && !isSpace(line.charCodeAt(i))) i++;
      pairs.push([key, line.slice(vs, i)]);
    }
  }
  return { pairs, valued, truncated: false };
}
