"""New config keys for a user-owned config: what ``mlfolio update`` adds to ``configs/config.yaml``.

The user owns ``configs/config.yaml`` (Copier never overwrites it), so keys a release adds would
stay invisible: the code's defaults apply, but nobody can see or set them. After an update the
template's config is rendered with the project's answers, and every key the user's file lacks is
inserted where the template has it, with the comment lines above it and its default value, as
text: the user's values, comments, order and formatting stay byte for byte. Keys the user has and
the template no longer has are reported, never deleted (the user may have added them).

ruamel.yaml only locates keys (line and column); the file is edited as lines, because a
round trip through any YAML library re-flows what it does not model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from mlfolio._errors import MlfolioError

CONFIG = Path("configs") / "config.yaml"


@dataclass
class ConfigMerge:
    """Dotted key paths: added to the user's config, and the user's that the template lacks."""

    added: list[str] = field(default_factory=list)
    not_in_template: list[str] = field(default_factory=list)


def _load(text: str, where: str) -> CommentedMap:
    try:
        loaded = YAML(typ="rt").load(text)
    except YAMLError as error:
        raise MlfolioError(f"{where} is not valid YAML ({error}); fix it, then update again") from None
    return loaded if isinstance(loaded, CommentedMap) else CommentedMap()


def merge_new_keys(user_text: str, template_text: str, where: str = str(CONFIG)) -> tuple[str, ConfigMerge]:
    """``user_text`` with every key of ``template_text`` it lacks, and what was added or is extra."""
    merge = ConfigMerge()
    template = _load(template_text, "the template's config")
    merge.not_in_template = _extra(_load(user_text, where), template, "")
    while True:  # one insertion at a time: each changes the line numbers of what follows
        user = _load(user_text, where)
        missing = _first_missing(user, template, "")
        if missing is None:
            return user_text, merge
        path, user_parent, template_parent, key = missing
        user_text = _insert(user_text, template_text, user_parent, template_parent, key)
        merge.added.append(path)


def _extra(user: CommentedMap, template: CommentedMap, prefix: str) -> list[str]:
    found = []
    for key, value in user.items():
        if key not in template:
            found.append(f"{prefix}{key}")
        elif isinstance(value, CommentedMap) and isinstance(template[key], CommentedMap):
            found += _extra(value, template[key], f"{prefix}{key}.")
    return found


def _first_missing(
    user: CommentedMap, template: CommentedMap, prefix: str
) -> tuple[str, CommentedMap, CommentedMap, Any] | None:
    """The first key (in the template's order, depth first) the user's config lacks. A section the
    user emptied (``params: {}``) is theirs: nothing is added into it."""
    for key, value in template.items():
        if key not in user:
            return f"{prefix}{key}", user, template, key
        mine = user[key]
        if isinstance(value, CommentedMap) and isinstance(mine, CommentedMap) and len(mine):
            found = _first_missing(mine, value, f"{prefix}{key}.")
            if found:
                return found
    return None


def _block(lines: list[str], line: int, column: int, with_comments: bool) -> tuple[int, int]:
    """Lines [start, end) of the key at ``line``: its comment lines above (when asked), the key and
    everything indented deeper below it (trailing blank lines belong to what follows)."""
    start = line
    while (
        with_comments and start > 0 and _indent(lines[start - 1]) == column and _is_comment(lines[start - 1])
    ):
        start -= 1
    end = line + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > column):
        end += 1
    while end > line + 1 and not lines[end - 1].strip():
        end -= 1
    return start, end


def _insert(
    user_text: str, template_text: str, user_parent: CommentedMap, template_parent: CommentedMap, key: Any
) -> str:
    """Copy the template's block for ``key`` (comments, key, nested lines) after the block of the
    nearest key before it that the user has, or first in the user's section."""
    template_lines = template_text.splitlines(keepends=True)
    line, column = template_parent.lc.key(key)
    start, end = _block(template_lines, line, column, with_comments=True)
    block = template_lines[start:end]
    user_lines = user_text.splitlines(keepends=True)
    if user_lines and not user_lines[-1].endswith("\n"):
        user_lines[-1] += "\n"
    keys = list(template_parent.keys())
    before = [k for k in keys[: keys.index(key)] if k in user_parent]
    if before:  # after the block of the nearest earlier key the user has
        sibling_line, sibling_column = user_parent.lc.key(before[-1])
        _, at = _block(user_lines, sibling_line, sibling_column, with_comments=False)
    elif len(user_parent):  # first in its section: before the first key the user has there
        first_line, first_column = user_parent.lc.key(next(iter(user_parent)))
        at, _ = _block(user_lines, first_line, first_column, with_comments=True)
    else:  # an empty file
        at = len(user_lines)
    if column == 0 and at:  # a new top-level section: a blank line apart, as the template has it
        block = ["\n", *block]
    return "".join(user_lines[:at] + block + user_lines[at:])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" ")) if line.strip() else -1


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def merge_config_file(project: Path, template_text: str) -> ConfigMerge:
    """Add the template's new keys to the project's ``configs/config.yaml`` (when it has one)."""
    path = project / CONFIG
    if not path.is_file():
        return ConfigMerge()
    text, merge = merge_new_keys(path.read_text(encoding="utf-8"), template_text, str(path))
    if merge.added:
        staged = path.with_name(f".{path.name}.merging")
        staged.write_text(text, encoding="utf-8")
        staged.replace(path)
    return merge
