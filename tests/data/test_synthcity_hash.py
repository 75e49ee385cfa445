"""Golden-hash test of the SynthCity generator: for fixed seeds every file it writes (PNGs, JSON tables, README)
must stay byte-identical, so refactorings of seg_uda/data/synthcity cannot change the benchmark silently."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict

import pytest

from seg_uda.data.synthcity import generate_synthcity

# Two cases: tiny frames (many frames, fast) and the default sizes 640x360 / 512x256, so full-size code paths
# (level of detail, detailed vehicles/people, texture levels, noise crops) are pinned too. The seeds were chosen
# (by line tracing) so that between them the frames run every branch of the scene sampler and the two styles
# (all weathers, private objects, tram, ego hood, ...) except error paths and a few rare early returns.
CASES = {
    "small": dict(seed=20, source_size=(128, 72), target_size=(128, 64), num_source=6, num_target_train=4,
                  num_target_val=3),
    "default_size": dict(seed=9, source_size=(640, 360), target_size=(512, 256), num_source=2,
                         num_target_train=2, num_target_val=2),
}

# sha256 of every file written, keyed by path relative to the output directory. Nothing is excluded: the
# generator writes no timestamps or absolute paths (elapsed_s and out_dir are only in the returned dict).
# Computed with the generator before the split of scene.py / style.py into concept modules. They also depend on
# the installed numpy (random streams) and OpenCV (PNG zlib, JPEG codec): after upgrading those, recompute them
# with a known-good generator rather than after a code change.
EXPECTED: Dict[str, Dict[str, str]] = {
    "default_size": {
        "README.md":
            "7566c3d4b8909e784fe24a5fbd398f5c1ec67a9e325044a8d27d379e3f998746",
        "game/class_frequencies.json":
            "e3495ed5edf7f75e51742e7d4160969bd36dd621c7ae63d8855e3841f4559f7a",
        "game/images/00001.png":
            "586885b60d960cb16cf8d24072b6d15ba34a3ff168978db313e1251d9d3b4e8a",
        "game/images/00002.png":
            "d4575826a60eeb66ff97a107e805851c47d1ec5770b4b48e53778cea7839a095",
        "game/labels/00001.png":
            "679f599aeedde0a3aa174da1d85adf163c824be2840c49ca68d3cbbfc277ffd4",
        "game/labels/00002.png":
            "50492196d82f90e3c2af8273b23290fac39bf225fda56e36a7b7542af4d73562",
        "real/class_frequencies.json":
            "db6df4b443666c1084604972e76f7673f98e18181a9bb0ceff642f502431a0ea",
        "real/gtFine/train/aldenburg/aldenburg_000000_000019_gtFine_labelIds.png":
            "b747ddbf7e04a5f9ec43322d587bd654b4e071347b4d282bf600055de8331cfb",
        "real/gtFine/train/aldenburg/aldenburg_000000_000019_gtFine_privateIds.png":
            "4c91dbdd0d1ed6767ccab6257ccc310ff023393f44d037ce28e184967a02cf89",
        "real/gtFine/train/corvella/corvella_000000_000019_gtFine_labelIds.png":
            "eb1b1080c664a9fea057beebdd9f092cbb27acd89e8244e27c0a2d7211d4ad23",
        "real/gtFine/train/corvella/corvella_000000_000019_gtFine_privateIds.png":
            "4c91dbdd0d1ed6767ccab6257ccc310ff023393f44d037ce28e184967a02cf89",
        "real/gtFine/val/eastholm/eastholm_000000_000019_gtFine_labelIds.png":
            "b2d1ce469e0974629dc98cf7f7a403775231ec278edc631ac6ece3274211eb4b",
        "real/gtFine/val/eastholm/eastholm_000000_000019_gtFine_privateIds.png":
            "4c91dbdd0d1ed6767ccab6257ccc310ff023393f44d037ce28e184967a02cf89",
        "real/gtFine/val/farrowgate/farrowgate_000000_000019_gtFine_labelIds.png":
            "50e53ffc36eb9dcc0119e83ac2f4b5bc567a074e61195d9a623560fdebaf559a",
        "real/gtFine/val/farrowgate/farrowgate_000000_000019_gtFine_privateIds.png":
            "8ac92ea4af843550383d909d5fe4df1cfd72ad3a830236bcab76b27f0facdf5b",
        "real/leftImg8bit/train/aldenburg/aldenburg_000000_000019_leftImg8bit.png":
            "fce2147a59c14a7072aa71614843ff98827493c21b748118ab7e9d4193846993",
        "real/leftImg8bit/train/corvella/corvella_000000_000019_leftImg8bit.png":
            "4842c913c62e4e4e60a0ade726c41ce6e62d7163426fb2366a8e4d1f7b872ba5",
        "real/leftImg8bit/val/eastholm/eastholm_000000_000019_leftImg8bit.png":
            "134994b02421a82b346bf5e40508556d763a70b397af5a55d30c26bc949d1b75",
        "real/leftImg8bit/val/farrowgate/farrowgate_000000_000019_leftImg8bit.png":
            "b1f29c6f22582f0268d7e4f032e4c0fc0103f9ebe2e7a8513cdc1843f677b1b1",
        "synthcity_meta.json":
            "5a1b903aec3b5e1fc6c52789aed89ebd051f7903db1cf5b1af1d8e691533e45d",
    },
    "small": {
        "README.md":
            "7ffaaaa80817e1338a8e671390591c769eed68acbdabe5478d9b35eacf047dc2",
        "game/class_frequencies.json":
            "44de80a720d0e41ac70d9d449b1286668a8e1a556e1d60d807984179ce253a59",
        "game/images/00001.png":
            "0c6776cebc7437cb953305bb078fb828832a7f571c25d2b4961c4b324a5145b2",
        "game/images/00002.png":
            "e881890f51f21d2223cbdcdcfa426f36693261d44f90715010a8d964502f0248",
        "game/images/00003.png":
            "fa2ac4cc7f1a9e6af0c26b5a4d737dd7f789d915a84a6c7cc244c0eec58fc194",
        "game/images/00004.png":
            "8d4b590b891dac06866142f0e703013f53cb60ddcf617ff0cb41b9d1634b58fe",
        "game/images/00005.png":
            "381d3d5bcabd5babd91885afe063f86531c89f0e8e2c70b0036178ce94c3e4bc",
        "game/images/00006.png":
            "13ee7cb95f9a964d91ed0395351aeae2a1643dc593d669f483e5c9464627feb4",
        "game/labels/00001.png":
            "91e69d4afb740745115c02ab4a47297e582705efb2411fb55a3a889b2906a7ed",
        "game/labels/00002.png":
            "5a4331697efac02b124c5ccdab385ee1481ce1e6337caa8f655b549bd5af83df",
        "game/labels/00003.png":
            "d242cbc6ec75f2c8dd71a41f714501522c716218fa7947af06f62ab41a65530f",
        "game/labels/00004.png":
            "98e1959ba4728e5183dacdf8dd82d3ecdee805be6a8c9d78d40d23b04c19753c",
        "game/labels/00005.png":
            "880c692ea22e9f4f91908110e95c3d9e80d160854d1e38fce7ccc31777b3ee11",
        "game/labels/00006.png":
            "a8908603c2c526db06fae69e549a184f019beac8468e12268f4d4f8f4c90f3ac",
        "real/class_frequencies.json":
            "24924712599c45ff9f3fa119a3653a2b992cf82ecacd62b7edd62cf594a73afc",
        "real/gtFine/train/aldenburg/aldenburg_000000_000019_gtFine_labelIds.png":
            "114daf9560f3c080388d830e0b669e556cc7b76d5cabf55e0fa71bfb2aaf23d4",
        "real/gtFine/train/aldenburg/aldenburg_000000_000019_gtFine_privateIds.png":
            "d6de29ac4231c9aeeb0f120dfb259d20fc8bb59b14f29cdc6986d7180ac50b1f",
        "real/gtFine/train/brackwater/brackwater_000000_000019_gtFine_labelIds.png":
            "b9de369c72e57d5f11a687e0d76804b60c0f29fc820eb3da9041581c3eb896a9",
        "real/gtFine/train/brackwater/brackwater_000000_000019_gtFine_privateIds.png":
            "10d530b2510ddfad3fd460ccc53d92490686d53ede851aeb2bcdf8608ff49d87",
        "real/gtFine/train/corvella/corvella_000000_000019_gtFine_labelIds.png":
            "70b06df7651764ac32cc813515178bbe76d1bffb6cea09114137f5a28a6bc367",
        "real/gtFine/train/corvella/corvella_000000_000019_gtFine_privateIds.png":
            "d6de29ac4231c9aeeb0f120dfb259d20fc8bb59b14f29cdc6986d7180ac50b1f",
        "real/gtFine/train/dunmore/dunmore_000000_000019_gtFine_labelIds.png":
            "6baf945da8cbdd02314fabc2114aaff2c15660c8f2185ca1f08c42432f59dfab",
        "real/gtFine/train/dunmore/dunmore_000000_000019_gtFine_privateIds.png":
            "d6de29ac4231c9aeeb0f120dfb259d20fc8bb59b14f29cdc6986d7180ac50b1f",
        "real/gtFine/val/eastholm/eastholm_000000_000019_gtFine_labelIds.png":
            "54d687ce545b1e8c59c81fc904d6bd7cb12a8f50d0a5b6bd12a436680491dcc2",
        "real/gtFine/val/eastholm/eastholm_000000_000019_gtFine_privateIds.png":
            "d6de29ac4231c9aeeb0f120dfb259d20fc8bb59b14f29cdc6986d7180ac50b1f",
        "real/gtFine/val/eastholm/eastholm_000001_000019_gtFine_labelIds.png":
            "0576f5f16f0d92a5758720c29165616f0f48e61517cf717dab14a1f8006a3a1f",
        "real/gtFine/val/eastholm/eastholm_000001_000019_gtFine_privateIds.png":
            "a0b79f0d8e7f8720bbfbd02b4bbb751651f60753a0cb7c13946738fab6b172a0",
        "real/gtFine/val/farrowgate/farrowgate_000000_000019_gtFine_labelIds.png":
            "ba31c84d1ee067ec0b506ce316059a66d89ded0be5c10ca265f1753998986c16",
        "real/gtFine/val/farrowgate/farrowgate_000000_000019_gtFine_privateIds.png":
            "4644e8d5eb8ba23492cc0cf1b89855a281cdbd3803a8b78964e6bc052aa8fda5",
        "real/leftImg8bit/train/aldenburg/aldenburg_000000_000019_leftImg8bit.png":
            "e96fd3fb7de240b28d49263d44639c20032ca805b17a098bea3a5d6afdfddc89",
        "real/leftImg8bit/train/brackwater/brackwater_000000_000019_leftImg8bit.png":
            "b1f010bd8c2390a15628cc27e272f6f518b80dc4a8cea0d345ed5f4d4756fbca",
        "real/leftImg8bit/train/corvella/corvella_000000_000019_leftImg8bit.png":
            "137127b907199209383876a20c306e21334f47544c9904951a63505a80153a99",
        "real/leftImg8bit/train/dunmore/dunmore_000000_000019_leftImg8bit.png":
            "d106a1ee6cf717a943a7cea93229eb9f6a4acf01d612b2a95584cee939035a62",
        "real/leftImg8bit/val/eastholm/eastholm_000000_000019_leftImg8bit.png":
            "fb6f5ba54e5f521fb8279740cfd168ab7bb7327a223725ea808498d3b09b9d30",
        "real/leftImg8bit/val/eastholm/eastholm_000001_000019_leftImg8bit.png":
            "8ad8908c5e2179f560a5c5fe89ec28b8f1e5adfc09e31fe2930a7a57882dc3c5",
        "real/leftImg8bit/val/farrowgate/farrowgate_000000_000019_leftImg8bit.png":
            "1a7339c2f61aa09625596ae786659be6dbbc58764e2a2fbac98888cd45d5c695",
        "synthcity_meta.json":
            "db56d96529dd3d6e840eeee42086959b82806cad55ad56a79035b07aff1a58ca",
    },
}


def _manifest(root: Path) -> Dict[str, str]:
    """{relative path: sha256 hex digest} of every file under ``root``, sorted by path."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_files_byte_identical(tmp_path: Path, case: str) -> None:
    out = tmp_path / case
    generate_synthcity(out, workers=1, **CASES[case])
    got, want = _manifest(out), EXPECTED[case]
    assert sorted(got) == sorted(want), f"file set changed: +{sorted(set(got) - set(want))} " \
                                        f"-{sorted(set(want) - set(got))}"
    changed = [rel for rel in want if got[rel] != want[rel]]
    assert not changed, f"{len(changed)} file(s) differ from the golden hashes: {changed}"
