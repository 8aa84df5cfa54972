"""The endpoint picker's plugin kernel, kept the way GIE and llm-d keep theirs: it knows the shape of a plugin, not
any plugin.

types.py         the data the plugins work on: endpoints, the parsed request, scheduling results
interfaces.py    the extension points (Filter, Scorer, Picker, ProfileHandler, RequestHooks, RequestParser) and the
                 per-request state
capabilities.py  one runtime-checkable Protocol per optional capability (flush, KV events, producer, P/D, ...)
registry.py      `@register(type, role, params, needs_body=, implicit=, aliases=)` and the typed `PluginHandle`
config.py        the config loader: older names, system defaults, references, building every plugin

Scheduling (`epp.scheduling`) and flow control (`epp.flowcontrol`) import this package and nothing of each other;
`epp.intree.register_in_tree_plugins()` registers the plugins that ship with inferplane.
"""
