"""The built site works with no network: MathJax typesets an equation from the build's own copy."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_equations_render_with_the_network_disabled(built_book, browser):
    context = browser.new_context()
    refused: list[str] = []

    def refuse_network(route):
        refused.append(route.request.url)
        route.abort()

    context.route("http*://**/*", refuse_network)  # only file:// may load: nothing from a CDN
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.goto((built_book / "book/foundations/numpy-nn.html").as_uri())
    page.wait_for_selector("mjx-container", timeout=30_000)  # MathJax replaced the TeX with its output
    rendered = page.locator("mjx-container").count()
    raw_tex_left = page.locator("div.math:not(:has(mjx-container))").count()
    context.close()
    assert rendered >= 9, f"only {rendered} equations typeset"
    assert raw_tex_left == 0, f"{raw_tex_left} display equations left as raw TeX"
    assert not console_errors, console_errors
    assert not any("mathjax" in url.lower() for url in refused), f"MathJax requested from the network: {refused}"
