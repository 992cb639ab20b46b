"""``{% memo %}…{% endmemo %}``: a piece of a template that is the same on every
request, rendered once per language, URLconf and script prefix and then reused.

The site's layout writes a dozen static file URLs, reversed URLs and translated
labels on every page; together they cost about as much as a small page's own
content. Only what depends on nothing else may go inside (no user, request, CSRF
token or nonce): the cache key is the language, the URLconf and the script prefix.
A template shared by a few pages names the page as a last part of the key:
``{% memo page.name %}`` (a fixed name, never user data: each value keeps its
own copy, 64 at most). Changed settings (tests) empty every memo.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakSet

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.base import FilterExpression, Node, NodeList, Parser, Token
from django.urls import get_script_prefix, get_urlconf
from django.utils.safestring import SafeString
from django.utils.translation import get_language

register = template.Library()

_nodes: WeakSet[MemoNode] = WeakSet()


class MemoNode(Node):
    def __init__(self, nodelist: NodeList, name: FilterExpression | None = None) -> None:
        self.nodelist = nodelist
        self.name = name
        self.rendered: dict[tuple[Any, ...], SafeString] = {}
        _nodes.add(self)

    def render(self, context: Any) -> SafeString:
        key: tuple[Any, ...] = (get_language(), get_urlconf(), get_script_prefix())
        if self.name is not None:
            key = (*key, str(self.name.resolve(context)))
        html = self.rendered.get(key)
        if html is None:
            if len(self.rendered) >= 64:
                self.rendered.clear()
            html = self.rendered[key] = self.nodelist.render(context)
        return html


@register.tag
def memo(parser: Parser, token: Token) -> MemoNode:
    bits = token.split_contents()
    if len(bits) > 2:
        raise template.TemplateSyntaxError("{% memo %} takes at most one argument.")
    name = parser.compile_filter(bits[1]) if len(bits) == 2 else None
    nodelist = parser.parse(("endmemo",))
    parser.delete_first_token()
    return MemoNode(nodelist, name)


@receiver(setting_changed)
def _forget(**kwargs: Any) -> None:
    for node in list(_nodes):
        node.rendered.clear()
