#!/usr/bin/env python
"""Check the built documentation site in `_docs/` (`make test-docs` builds it first, then runs this).

- Static: every HTML page loads its scripts, styles, fonts, images and media from the site itself (no CDN),
  and every internal link points at an existing file and, for `page.html#id`, at an existing id.
- Browser: serves `_docs/` on 127.0.0.1 and opens every page in headless Chromium (playwright-core,
  docs/browser/check_pages.mjs): the page loads (HTTP 200), no request fails or leaves the machine, no JS
  error, every image decodes, every audio player loads its sound, math is typeset, search finds a
  documented function. Screenshots of the home page and the `00_audio` page go to `_docs/screenshots/`.
- Notebooks: any notebook that failed to execute during the build (see `_docs/build_report.json`) fails the
  check, unless `--allow-failed-notebooks`.
Exit status 0 when everything passes; the last line reads 'N passed, N failed'.
"""
from __future__ import annotations
import argparse, functools, http.server, json, re, subprocess, sys, tempfile, threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit, unquote

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT/'_docs'
BROWSER = ROOT/'docs'/'browser'

class PageParser(HTMLParser):
    "Collects ids, links and loaded resources of one HTML page"
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.resources = set(), [], []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('name'): self.ids.add(a['name'])
        if tag == 'a' and a.get('href') is not None: self.links.append(a['href'])
        if tag == 'link' and a.get('href'):
            rel = (a.get('rel') or '').lower()
            (self.resources if ('stylesheet' in rel or 'preload' in rel or 'icon' in rel) else self.links).append(a['href'])
        if tag in ('script', 'img', 'audio', 'video', 'source', 'iframe', 'embed', 'track') and a.get('src'):
            self.resources.append(a['src'])

def is_external(u:str) -> bool: return bool(re.match(r'^(https?:)?//', u.strip(), re.I))

def html_pages() -> list[Path]:
    return sorted(p for p in SITE.rglob('*.html') if not set(p.relative_to(SITE).parts[:-1]) & {'_static', '_sources', '_images'})

def static_checks(pages:list[Path]) -> list[str]:
    "Problems found without a browser: external assets, broken internal links and anchors"
    probs, parsed = [], {}
    for p in pages:
        pp = PageParser(); pp.feed(p.read_text(encoding='utf-8', errors='replace')); parsed[p] = pp
    for p, pp in parsed.items():
        rel = p.relative_to(SITE)
        for u in pp.resources:
            if is_external(u): probs.append(f'{rel}: loads an external resource {u}')
            elif not u.startswith('data:'):
                f = (p.parent/unquote(urlsplit(u).path)).resolve()
                if not f.is_file(): probs.append(f'{rel}: missing resource {u}')
        for u in pp.links:
            if is_external(u) or re.match(r'^(mailto|javascript|tel|data):', u): continue
            parts = urlsplit(u)
            target = p if not parts.path else (p.parent/unquote(parts.path)).resolve()
            if target.is_dir(): target = target/'index.html'
            if not target.exists(): probs.append(f'{rel}: broken link {u}'); continue
            if parts.fragment and target.suffix == '.html':
                tp = parsed.get(target)
                if tp is None: tp = PageParser(); tp.feed(target.read_text(encoding='utf-8', errors='replace')); parsed[target] = tp
                if unquote(parts.fragment) not in tp.ids: probs.append(f'{rel}: link to a missing anchor {u}')
    for css in SITE.rglob('*.css'):   # fonts or @imports from the network
        for m in re.finditer(r'(?:url\(\s*[\'"]?|@import\s+[\'"])((?:https?:)?//[^\'")\s]+)', css.read_text(errors='replace')):
            probs.append(f'{css.relative_to(SITE)}: CSS loads {m.group(1)}')
    return probs

def serve(directory:Path):
    "A quiet HTTP server for `directory` on 127.0.0.1, on a free port, in a daemon thread"
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv

def browser_checks(pages:list[Path], shots:Path) -> tuple[list[str], dict]:
    "Problems found by opening each page in headless Chromium"
    srv = serve(SITE)
    base = f'http://127.0.0.1:{srv.server_address[1]}/'
    names = [p.relative_to(SITE).as_posix() for p in pages]
    with tempfile.TemporaryDirectory() as td:
        out = Path(td)/'result.json'
        p = subprocess.run(['node', str(BROWSER/'check_pages.mjs'), base, str(out), str(shots), *names],
                           cwd=BROWSER, capture_output=True, text=True, timeout=600)
        if p.returncode != 0 or not out.exists():
            srv.shutdown()
            return [f'browser run failed (exit {p.returncode}): {(p.stderr or p.stdout)[-3000:]}'], {}
        res = json.loads(out.read_text())
    srv.shutdown()
    probs = [f'request left the machine: {u}' for u in sorted(set(res['external']))]
    known = {n: set(r.get('ids', [])) for n, r in res['pages'].items()}
    for n, r in res['pages'].items():
        if r['status'] != 200: probs.append(f'{n}: page did not load (HTTP {r["status"]})')
        probs += [f'{n}: request failed {x}' for x in r['failed']]
        probs += [f'{n}: HTTP error {x}' for x in r['http_errors']]
        probs += [f'{n}: JavaScript error {x}' for x in r['js_errors']]
        probs += [f'{n}: missing image {x}' for x in r['broken_images']]
        probs += [f'{n}: audio player {i} did not load its sound ({a})' for i, a in enumerate(r.get('audio', []))
                  if a.get('error') is not None or a.get('readyState', 0) < 1]
        if r.get('math_spans', 0) and not r.get('math'): probs.append(f'{n}: math was not typeset (MathJax)')
        if r.get('math_errors'): probs.append(f'{n}: {r["math_errors"]} MathJax errors')
        if r.get('nav_links', 0) < len([x for x in names if x not in ('genindex.html', 'search.html')]) - 1:
            probs.append(f'{n}: navigation lists only {r.get("nav_links")} pages')
        for u in r.get('links', []):   # internal links against what the browser saw
            if is_external(u) or re.match(r'^(mailto|javascript|tel|data):', u): continue
            parts = urlsplit(u)
            tgt = (Path(n).parent/unquote(parts.path)).as_posix() if parts.path else n
            tgt = re.sub(r'(^|/)\./', r'\1', tgt)
            if tgt.endswith('.html') and tgt not in known: probs.append(f'{n}: broken link {u}')
            elif tgt in known and parts.fragment and unquote(parts.fragment) not in known[tgt]:
                probs.append(f'{n}: link to a missing anchor {u}')
    for q, s in (res.get('search') or {}).items():
        if not s['results']: probs.append(f'search for {q!r} found nothing')
    return probs, res

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--allow-failed-notebooks', action='store_true', help='do not fail on notebooks that failed to execute')
    ap.add_argument('--no-browser', action='store_true', help='static checks only')
    ap.add_argument('--site', type=Path, default=SITE, help='site folder (default _docs/)')
    a = ap.parse_args()
    globals()['SITE'] = a.site.resolve()
    if not (SITE/'index.html').exists(): sys.exit('no site in _docs/: run `make docs` first')
    pages = html_pages()
    shots = SITE/'screenshots'
    results = {}
    results['static: assets are local, internal links and anchors resolve'] = static_checks(pages)
    if not a.no_browser:
        probs, res = browser_checks(pages, shots)
        results[f'browser: {len(pages)} pages open cleanly in headless Chromium'] = probs
        if res:
            s = res.get('search', {})
            print('search: ' + ', '.join(f'{q!r} -> {v["results"]} results' for q, v in s.items()))
            print('screenshots: ' + ', '.join(res.get('screenshots', [])))
            results['screenshots of the home page and 00_audio saved'] = \
                [] if {'home.png', '00_audio.png'} <= {Path(x).name for x in res.get('screenshots', [])} else ['screenshots missing']
    rep = json.loads((SITE/'build_report.json').read_text()) if (SITE/'build_report.json').exists() else {}
    failed = rep.get('failed', [])
    nb_probs = [f"{p}: {rep['notebooks'][p]['status']}: " + '; '.join(
        f"cell {e.get('cell')}: {e.get('ename')}: {str(e.get('evalue'))[:160]}" for e in rep['notebooks'][p]['errors'][:2])
        for p in failed]
    results[f"notebooks: all {rep.get('pages', '?')} executed without error" +
            (' (failures allowed)' if a.allow_failed_notebooks else '')] = [] if a.allow_failed_notebooks else nb_probs
    if a.allow_failed_notebooks and nb_probs: print('notebooks that failed to execute (allowed):\n  ' + '\n  '.join(nb_probs))
    n_ok = n_bad = 0
    for name, probs in results.items():
        if probs:
            n_bad += 1; print(f'FAIL {name}'); print('  ' + '\n  '.join(probs[:40]))
            if len(probs) > 40: print(f'  ... and {len(probs) - 40} more')
        else: n_ok += 1; print(f'ok   {name}')
    print(f'{n_ok} passed, {n_bad} failed')
    sys.exit(1 if n_bad else 0)

if __name__ == '__main__': main()
