# Sphinx configuration for the vgsg documentation site (built by `make docs` -> docs/build.py).
# Page sources are the executed, processed notebooks that docs/build.py writes to build/docs/src.
import configparser, shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_cfg = configparser.ConfigParser(); _cfg.read(ROOT/'settings.ini')
_d = _cfg['DEFAULT']

project = _d.get('title', _d.get('lib_name', 'vgsg'))
author = _d.get('author', '')
copyright = _d.get('copyright', '')
release = version = _d.get('version', '')
html_title = f"{project} documentation"

extensions = ['myst_nb', 'sphinx.ext.mathjax']
root_doc = 'index'
exclude_patterns = ['**.ipynb_checkpoints']
source_suffix = {'.ipynb': 'myst-nb', '.md': 'myst-nb'}

# MyST: notebook markdown as nbdev writes it ($math$, tables, ::: admonitions, {attrs})
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence', 'deflist', 'attrs_inline', 'strikethrough']
myst_heading_anchors = 3
nb_execution_mode = 'off'            # docs/build.py executed the notebooks already (with a time budget)
nb_render_markdown_format = 'myst'   # markdown outputs (tables etc.)
nb_ipywidgets_js = {}                # no widget JS from a CDN: widgets are replaced by a note
nb_merge_streams = True
suppress_warnings = ['myst.header', 'mystnb.unknown_mime_type', 'misc.highlighting_failure']

# Theme and assets: everything is served from _static, nothing from the network
html_theme = 'furo'
html_static_path = [str(Path(__file__).parent/'_static')]
html_css_files = ['nbdocs.css']
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {'sidebar_hide_name': False, 'navigation_with_keys': True}

# MathJax 3 from the PyPI package django-static-mathjax (pure static files), copied next to the site's assets
def _stage_mathjax():
    import mathjax   # provided by django-static-mathjax
    es5 = Path(mathjax.__file__).parent/'static'/'mathjax'/'es5'
    dst = ROOT/'build'/'docs'/'static_mathjax'/'mathjax'
    if not (dst/'tex-chtml.js').exists():
        for rel in ['tex-chtml.js', 'input/tex/extensions', 'output/chtml/fonts/woff-v2', 'ui', 'a11y']:
            s, t = es5/rel, dst/rel
            if s.is_dir(): shutil.copytree(s, t, dirs_exist_ok=True)
            else: t.parent.mkdir(parents=True, exist_ok=True); shutil.copy(s, t)
        shutil.copy(es5.parent/'LICENSE', dst/'LICENSE')
    return dst.parent
html_static_path.append(str(_stage_mathjax()))
mathjax_path = 'mathjax/tex-chtml.js'
