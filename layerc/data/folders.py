"""Files in one subfolder per class, listed as Keras's `image_dataset_from_directory` and
`text_dataset_from_directory` list them, from folder entries alone (no file is opened, and
neither NumPy nor Pillow is imported: `layerc validate` and `summary` read data through this).
data/images.py re-exports these names as part of its interface.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError
from .paths import candidates

FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # Keras's ALLOWLIST_FORMATS
TEXT_FORMATS = (".txt",)
IGNORED = {"thumbs.db", "desktop.ini"}  # files a file manager leaves in folders


@dataclass
class Listing:
    """The files of one source, in Keras's order, and what was wrong while listing them.

    Attributes:
        root: the folder (or CSV file) listed.
        paths: the files, class by class, sorted within each class (a CSV: in its row order).
        labels: each file's class id (index into class_names).
        class_names: the classes in id order.
        bad: (path, reason) for files and links that cannot be used (not images, loops).
    """

    root: Path
    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)

    def copy(self) -> "Listing":
        return Listing(self.root, list(self.paths), list(self.labels), list(self.class_names), list(self.bad))

    def take(self, keep) -> "Listing":
        keep = list(keep)
        return Listing(self.root, [self.paths[i] for i in keep], [self.labels[i] for i in keep],
                       self.class_names, self.bad)

    def limit(self, limit: int | None) -> "Listing":
        """`limit` files evenly spaced through the listing, in its order, so that every class keeps
        its share (the first files of a class folder listing would be one class)."""
        n = len(self.paths)
        if limit is None or limit >= n:
            return self
        return self.take(i * n // limit for i in range(limit))


# ---- listing -------------------------------------------------------------------------------

def locate(name: str, spec_dir: Path | None) -> Path | None:
    """The first existing folder or file for a source path, or None."""
    return next((p for p in candidates(name, spec_dir) if p.exists()), None)


def find_source(name: str, spec_dir: Path | None) -> Path:
    """A source's folder or CSV file; raises DataError listing the places tried."""
    found = locate(name, spec_dir)
    if found is None:
        tried = ", ".join(map(str, candidates(name, spec_dir)))
        raise DataError(f"data folder {name!r} not found (tried: {tried})")
    return found


def list_images(spec, src, spec_dir: Path | None, class_names: list[str] | None = None) -> Listing:
    """The images of one source of `spec` (ImagesData): a class folder tree or a CSV listing.

    Args:
        class_names: the training data's classes, for a validation or test source (its
            classes must be among them); default: `spec.class_names`, else the folder's.
    """
    root = find_source(src.path, spec_dir)
    if root.is_file():
        return list_csv(spec, root, class_names or spec.class_names)
    return list_files(root, FORMATS, class_names or spec.class_names, spec.follow_links,
                      training=class_names is None)


# A job lists a folder up to three times (the shape check, the memory estimate, the read): the
# listing is kept, with the status times of every folder it visited, and given again while none
# of those folders has changed (a file added, removed or renamed changes its folder's times). A
# folder modified in the last seconds is not trusted to show a further change within its clock's
# tick (as git's racy-index rule), so such listings are not kept.
_listed: dict[tuple, tuple[list, Listing]] = {}
_SETTLED_NS = 3_000_000_000
_KEPT = 4  # listings kept at most (the latest ones)


def list_files(root: Path, formats: tuple, class_names: list[str] | None, follow_links: bool,
               training: bool = True) -> Listing:
    """`_list_files`, or its listing of these folders kept from earlier in this process while
    no folder it visited has changed since."""
    key = (os.path.abspath(root), formats, None if class_names is None else tuple(class_names),
           follow_links, training)
    if key in _listed:
        stamps, listing = _listed[key]
        if stamps == _stamps(d for d, _ in stamps):
            return listing.copy()
        del _listed[key]
    visited, start = [], time.time_ns()
    listing = _list_files(Path(root), formats, class_names, follow_links, training, visited)
    if all(t is not None and t[0] < start - _SETTLED_NS for _, t in visited):  # their mtimes
        _listed[key] = (visited, listing.copy())
        while len(_listed) > _KEPT:
            del _listed[next(iter(_listed))]
    return listing


def _stamps(folders) -> list[tuple[str, tuple | None]]:
    """(folder, (mtime, ctime, inode) or None if it cannot be read) for each folder."""
    out = []
    for d in folders:
        try:
            st = os.stat(d)
            out.append((d, (st.st_mtime_ns, st.st_ctime_ns, st.st_ino)))
        except OSError:
            out.append((d, None))
    return out


def _list_files(root: Path, formats: tuple, class_names: list[str] | None, follow_links: bool,
                training: bool, visited: list) -> Listing:
    """Files ending in `formats` in each class subfolder of `root`, in Keras's order: classes
    sorted by name (or as `class_names` gives them), files sorted by path within each class,
    subfolders included. Hidden files and folders are left out. `visited` gets each folder's
    `_stamps` entry, taken before the folder is read.

    Raises DataError for a folder with no class folders, a class with no files, and (when
    `training`) a single class; other files and symlink loops are returned in `bad`.
    """
    visited += _stamps([str(root)])
    try:
        subdirs = sorted(e.name for e in os.scandir(root) if not e.name.startswith(".") and e.is_dir())
    except OSError as e:
        raise DataError(f"{root}: cannot list the folder ({e.strerror or e})") from None
    if class_names is not None:
        missing = [c for c in class_names if c not in subdirs]
        if missing and training:
            raise DataError(f"{root}: class_names names {', '.join(map(repr, missing))}, which "
                            f"{'is no subfolder' if len(missing) == 1 else 'are no subfolders'} "
                            f"(subfolders: {', '.join(subdirs) or 'none'})")
        if not training:
            extra = [d for d in subdirs if d not in class_names]
            if extra:
                raise DataError(f"{root}: folder {extra[0]!r} is no class of the training data "
                                f"({', '.join(class_names)})")
        names = list(class_names)
    else:
        names = subdirs
    if not names or (not training and not subdirs):
        raise DataError(f"{root}: holds no class folders (one subfolder per class, "
                        f"e.g. {root}/cats/, {root}/dogs/)")
    if training and len(names) == 1:
        raise DataError(f"{root}: holds one class folder only ({names[0]}); a classifier needs "
                        "at least two (one subfolder per class)")
    listing = Listing(root, class_names=names)
    empty = []
    for label, name in enumerate(names):
        folder = root / name
        if not folder.is_dir():
            continue  # a validation or test folder without this class
        before = len(listing.bad)
        files = list(walk_files(folder, formats, follow_links, listing.bad, visited))
        if not files and len(listing.bad) == before:  # not a folder whose files are all bad
            empty.append(str(folder))
        listing.paths += files
        listing.labels += [label] * len(files)
    if empty:
        raise DataError(f"class folder{'s' if len(empty) > 1 else ''} {', '.join(empty)} "
                        f"hold{'' if len(empty) > 1 else 's'} no files ({', '.join(formats)})")
    return listing


def walk_files(folder: Path, formats: tuple, follow_links: bool, bad: list, visited: list | None = None):
    """Files under `folder` with a suffix in `formats`, sorted by (folder, name) as Keras's
    os.walk-based listing gives them; other files go to `bad`. Linked folders are followed
    with `follow_links`, and one that leads back into its own path is a loop (in `bad`).
    `visited` gets each folder's `_stamps` entry, taken before the folder is read."""
    found = []  # (folder path text, name, path)

    def visit(path: Path, ancestors: tuple):
        if visited is not None:
            visited.extend(_stamps([str(path)]))
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as e:
            bad.append((str(path), f"cannot list the folder ({e.strerror or e})"))
            return
        for e in entries:
            if e.name.startswith(".") or e.name.lower() in IGNORED:
                continue
            p = Path(e.path)
            try:
                is_dir = e.is_dir()
            except OSError as err:
                bad.append((str(p), f"cannot be read ({err.strerror or err})"))
                continue
            if is_dir:
                if e.is_symlink() and not follow_links:
                    continue
                try:
                    real = os.path.realpath(p, strict=True)
                except OSError as err:
                    bad.append((str(p), "a symlink loop (the link leads back to itself)"
                                if err.errno == 40 else f"cannot be read ({err.strerror or err})"))
                    continue
                if real in ancestors:
                    bad.append((str(p), f"a symlink loop (it leads back to {real})"))
                    continue
                visit(p, ancestors + (real,))
            elif e.name.lower().endswith(formats):
                found.append((str(path), e.name, p))
            elif not os.path.exists(p) and e.is_symlink():
                bad.append((str(p), "a broken symlink"))
            else:
                bad.append((str(p), f"not a {'/'.join(f.lstrip('.') for f in formats)} file"))

    visit(folder, (os.path.realpath(folder),))
    found.sort(key=lambda t: (t[0], t[1]))
    return [p for _, _, p in found]


def list_csv(spec, path: Path, class_names: list[str] | None) -> Listing:
    """Images listed in a CSV file (`path_column`, `label_column`), paths relative to the file."""
    from .csv import column_index, read_table

    table = read_table(path, True, ",")
    pcol = column_index(table, spec.path_column, "path")
    lcol = column_index(table, spec.label_column, "label")
    labels = [row[lcol].strip() for row in table.rows]
    if class_names is None:
        found = set(labels)
        names = sorted(found, key=lambda v: (0, int(v), v) if v.isdigit() else (1, 0, v))
    else:
        names = list(class_names)
    index = {n: i for i, n in enumerate(names)}
    listing = Listing(path, class_names=names)
    for row, line, label in zip(table.rows, table.lines, labels):
        if label not in index:
            raise DataError(f"{path}: line {line}: label {label!r} is not one of {', '.join(names)}")
        listing.paths.append(path.parent / row[pcol].strip())
        listing.labels.append(index[label])
    if class_names is None and len(names) == 1:
        raise DataError(f"{path}: every image has the label {names[0]!r}; a classifier needs at least two classes")
    return listing


def bad_files_error(what: str, bad: list[tuple[str, str]], training: bool = True) -> DataError:
    """One error naming every bad file."""
    listed = "; ".join(f"{p}: {r}" for p, r in bad)
    them = "them" if len(bad) > 1 else "it"
    advice = (f"training does not start (fix or remove {them}, or set `bad_files: skip` in `data:` to train "
              f"without {them})" if training else f"fix or remove {them}")
    return DataError(f"{what}: {len(bad)} file{'s' if len(bad) > 1 else ''} cannot be used, so {advice}: {listed}")
