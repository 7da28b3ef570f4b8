"""The web page's static files (``index.html``, ES modules, ``app.css``), served by
:mod:`hookd.api.ui` from the installed package: no build step, nothing from elsewhere."""
