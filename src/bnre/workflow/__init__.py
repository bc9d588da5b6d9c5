"""The workflow's logic, as plain Python that pytest calls directly: the config read as the
schema's types (:mod:`.schema`), the cross-key checks and the tasks it names
(:mod:`.settings`), and what each job is given (:mod:`.jobs`). ``rules/common.smk`` keeps
what must be Snakemake: the schema's validation, paths, wildcards, targets and resources.

Standard library, PyYAML and jsonschema only, and nothing of the package beyond
:mod:`bnre.registry` and :mod:`bnre.workflow.sourcegraph`: Snakemake imports it where the package's
own dependencies (torch, ...) may not be installed. A problem with the config raises
:class:`ConfigError`, whose message names the key.

Imports: bnre.registry.
"""


class ConfigError(ValueError):
    """A config the workflow cannot run, with a message that names the key."""
