"""Swagger UI at /docs needs nothing from outside the API (air-gapped clusters): every file it loads is served by the
API itself, under a CSP that admits only those files and the page's own inline script."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urljoin, urlsplit


def _references(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page) + re.findall(
        r"""(?:url|openapi_url)\s*:\s*['"]([^'"]+)['"]""", page
    )


def test_docs_references_no_external_host(api):
    response = api.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "SwaggerUIBundle" in page
    # no absolute URL anywhere in the page: no CDN, no favicon or validator badge from elsewhere
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page, re.I), page
    references = _references(page)
    assert references
    for reference in references:
        parts = urlsplit(urljoin(str(response.url), reference))
        assert parts.netloc == response.url.netloc.decode(), reference


def test_docs_assets_answer_from_the_api(api):
    page = api.get("/docs").text
    scripts = re.findall(r"""<script[^>]*\bsrc\s*=\s*["']([^"']+)["']""", page)
    styles = re.findall(r"""<link[^>]*\bhref\s*=\s*["']([^"']+\.css)["']""", page)
    assert scripts and styles
    for url, kind in [(u, "javascript") for u in scripts] + [(u, "css") for u in styles]:
        response = api.get(url)
        assert response.status_code == 200, url
        assert kind in response.headers["content-type"], (url, response.headers["content-type"])
        assert len(response.content) > 10_000, url
        # the security headers stay on the assets too
        assert response.headers["x-content-type-options"] == "nosniff"
    assert api.get("/docs-assets/no-such-file.js").status_code == 404
    assert api.get("/openapi.json").status_code == 200


def test_docs_csp_admits_only_the_api_and_the_inline_script(api):
    response = api.get("/docs")
    directives = [p.split() for p in response.headers["content-security-policy"].split(";")]
    csp = {d[0]: d[1:] for d in directives if d}
    assert csp["default-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.S)
    assert inline
    hashes = {f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline}
    assert set(csp["script-src"]) == {"'self'"} | hashes
    assert not any(source.startswith(("http", "*")) for sources in csp.values() for source in sources)
    assert response.headers["x-frame-options"] == "DENY"


def test_no_page_loads_from_a_cdn(api):
    """ReDoc only comes from a CDN, so there is none; the UI's CSP covers every other page."""
    assert api.get("/redoc").status_code == 404
    assert "content-security-policy" in api.get("/redoc").headers
