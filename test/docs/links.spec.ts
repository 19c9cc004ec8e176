import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * Every relative link and `#anchor` in the Markdown docs resolves: the file exists, and the
 * anchor is a heading of that file (GitHub's slugs). External links are not fetched.
 */
const ROOT = join(__dirname, '..', '..');

function markdownFiles(): string[] {
  const docs = join(ROOT, 'docs');
  const files = ['README.md', 'CONTRIBUTING.md', 'PARAMS.md', 'CHANGELOG.md'].map((f) =>
    join(ROOT, f),
  );
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.md')) files.push(path);
    }
  };
  if (existsSync(docs)) walk(docs);
  return files;
}

/** The text outside fenced code blocks, line by line (code may hold `[x](y)` legitimately). */
function proseLines(text: string): string[] {
  let fenced = false;
  return text.split('\n').map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return '';
    }
    return fenced ? '' : line;
  });
}

/** GitHub's heading anchor: rendered text, lower case, punctuation dropped, spaces to '-'. */
function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // a link counts by its text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of proseLines(readFileSync(file, 'utf8'))) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** `[text](target)` links outside code (inline code spans removed first). */
function linksOf(file: string): Array<{ line: number; target: string }> {
  const links: Array<{ line: number; target: string }> = [];
  proseLines(readFileSync(file, 'utf8')).forEach((raw, i) => {
    const line = raw.replace(/`[^`]*`/g, '``');
    for (const m of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      links.push({ line: i + 1, target: m[1] });
    }
  });
  return links;
}

function brokenLinks(file: string): string[] {
  const broken: string[] = [];
  for (const { line, target } of linksOf(file)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: …
    const [path, anchor] = target.split('#', 2) as [string, string | undefined];
    const where = `${relative(ROOT, file)}:${line} -> ${target}`;
    const dest = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
    if (!existsSync(dest)) {
      broken.push(`${where} (no such file)`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!dest.endsWith('.md')) {
      broken.push(`${where} (anchor into a file that is not Markdown)`);
    } else if (!anchorsOf(dest).has(anchor)) {
      broken.push(`${where} (no heading with that anchor)`);
    }
  }
  return broken;
}

describe('links in the Markdown docs', () => {
  it('computes GitHub anchors for the heading shapes the docs use', () => {
    expect(slug("How admission is attached (`admission: 'guard' | 'interceptor'`)")).toBe(
      'how-admission-is-attached-admission-guard--interceptor',
    );
    expect(slug('`GET /balancer/stats`')).toBe('get-balancerstats');
    expect(slug('The startup probe (`probe_on_startup`, on by default)')).toBe(
      'the-startup-probe-probe_on_startup-on-by-default',
    );
    expect(slug('See it live: `npm run demo:load`')).toBe('see-it-live-npm-run-demoload');
  });

  it('reports a missing file and a missing anchor, and ignores links inside code', () => {
    const dir = mkdtempSync(join(tmpdir(), 'docs-links-'));
    const file = join(dir, 'page.md');
    writeFileSync(
      file,
      [
        '# A page',
        '## Same name',
        '## Same name',
        '[ok](#a-page) [ok](#same-name-1) [ok](page.md#same-name)',
        '[gone](missing.md) [bad anchor](#nowhere) `[in code](missing.md)`',
        '```',
        '[in a block](missing.md)',
        '```',
      ].join('\n'),
    );
    try {
      expect(brokenLinks(file).map((b) => b.replace(/^.*-> /, ''))).toEqual([
        'missing.md (no such file)',
        '#nowhere (no heading with that anchor)',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(markdownFiles().map((f) => [relative(ROOT, f), f]))(
    '%s: every relative link and anchor resolves',
    (_name, file) => {
      expect(brokenLinks(file)).toEqual([]);
    },
  );
});
