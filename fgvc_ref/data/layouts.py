"""Which layout a dataset folder holds, chosen by completeness, never by one file's presence.

A layout is a name and the paths it needs under the root (:class:`Layout`): ``"x.mat"`` a file,
``"images/"`` a folder holding at least one entry that is not junk, ``"data/*.parquet"`` a glob with
at least one match, and a tuple of paths for "any one of these" (a file that copies put in
different places). Real downloads put several layouts'
files side by side (the full Stanford Cars download unpacks ``cars_annos.mat`` beside a complete
devkit copy, with no ``car_ims/``), so :func:`find_layout`:

- takes as candidates the layouts with at least one of their own paths present (a path no other
  layout needs: the root-level ``cars_test_annos_withlabels.mat`` of a devkit copy does not make it
  a candidate Kaggle copy);
- chooses the first **complete** candidate in the loader's documented preference order, and says
  which it chose, why, and which other complete ones it passed over;
- with ``force`` (``prepare --layout NAME``), takes that layout if it is complete;
- when no candidate is complete, fails with every candidate and what it lacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from fgvc_ref.data.images import find
from fgvc_ref.data.records import DatasetError

Need = str | tuple[str, ...]  # a relative path ("name/" for a folder), or any one of several


class Layout(NamedTuple):
    name: str
    needs: tuple[Need, ...]
    description: str = ""  # what copy of the dataset looks like this, for messages
    hint: str = ""  # what to do when it is incomplete
    hint_for: str = ""  # show the hint only when a need containing this text is missing ("": whenever incomplete)


class Found(NamedTuple):
    layout: str
    note: str  # which layout, why, and what else was considered


def _present(root: Path, rel: str) -> bool:
    if "*" in rel:  # a glob: any match whose parts are not junk
        return bool(find(root, rel))
    path = root / rel.rstrip("/")
    if not rel.endswith("/"):
        return path.is_file()
    try:
        return path.is_dir() and bool(find(path, "*"))
    except OSError:
        return False


def _met(root: Path, need: Need) -> bool:
    return any(_present(root, rel) for rel in ((need,) if isinstance(need, str) else need))


def _show(need: Need) -> str:
    return need if isinstance(need, str) else " or ".join(need)


def _paths(layout: Layout) -> set[str]:
    return {rel for need in layout.needs for rel in ((need,) if isinstance(need, str) else need)}


def _own_paths(layout: Layout, layouts: tuple[Layout, ...]) -> set[str]:
    """The paths only this layout needs (all of its paths if it has none of its own)."""
    shared = set().union(*(_paths(other) for other in layouts if other.name != layout.name))
    return (_paths(layout) - shared) or _paths(layout)


def locate(root: Path | str, need: Need) -> Path:
    """The first of a need's paths that is present under ``root`` (the layout was checked complete)."""
    options = (need,) if isinstance(need, str) else need
    return Path(root) / next((rel for rel in options if _present(Path(root), rel)), options[0]).rstrip("/")


def lacks(root: Path | str, layout: Layout) -> list[str]:
    """The needs of ``layout`` that ``root`` does not meet, as readable strings."""
    return [_show(n) for n in layout.needs if not _met(Path(root), n)]


def find_layout(root: Path | str, layouts: tuple[Layout, ...], *, what: str, force: str | None = None) -> Found:
    """The layout of ``root`` among ``layouts`` (in preference order), by the module's rules; DatasetError otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset root not found (or not a directory)")
    names = [layout.name for layout in layouts]
    if force is not None:
        if force not in names:
            raise DatasetError(f"--layout {force!r} is not a {what} layout; use one of {names}")
        layout = layouts[names.index(force)]
        missing = lacks(root, layout)
        if missing:
            raise DatasetError(f"{root}: the {force} layout ({what}, asked for with --layout) lacks {missing}")
        return Found(force, f"{what} layout {force} (asked for with --layout; all its files are present)")
    candidates = [(layout, lacks(root, layout)) for layout in layouts if any(_present(root, rel) for rel in _own_paths(layout, layouts))]
    complete = [layout for layout, missing in candidates if not missing]
    if not complete:
        if not candidates:
            found = [p.name for p in find(root, "*")][:20]
            expected = "; ".join(f"{layout.name}: {', '.join(map(_show, layout.needs))}" for layout in layouts)
            raise DatasetError(f"{root}: no {what} layout found. Expected one of ({expected}); found {found}. See docs/data.md")
        hint = lambda layout, missing: f" ({layout.hint})" if layout.hint and any(layout.hint_for in m for m in missing) else ""
        detail = "; ".join(f"{layout.name}" + (f" ({layout.description})" if layout.description else "") + f" lacks {missing}"
                           + hint(layout, missing) for layout, missing in candidates)
        raise DatasetError(f"{root}: no complete {what} layout: {detail}. See docs/data.md")
    chosen = complete[0]
    note = f"{what} layout {chosen.name}: all its files are present ({', '.join(map(_show, chosen.needs))})"
    if len(complete) > 1:
        others = [layout.name for layout in complete[1:]]
        note += (f"; also complete: {', '.join(others)}, not used: the preference is {' > '.join(names)} "
                 f"(--layout {others[0]} to use it)")
    partial = [(layout.name, missing) for layout, missing in candidates if missing]
    if partial:
        note += "; incomplete, not used: " + "; ".join(f"{name} lacks {missing}" for name, missing in partial)
    return Found(chosen.name, note)
