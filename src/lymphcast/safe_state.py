"""Store a fitted model as JSON plus safetensors, so that loading a bundle can never run code from the file.

A pickle (joblib) names any callable and calls it on load; a bundle copied from another hospital must not be able
to do that. Here the model's object graph is written as a JSON tree whose arrays and tensors go to one
safetensors file. Loading rebuilds only classes from an allow-list of packages (LymphCast, scikit-learn, NumPy,
PyTorch modules, MONAI) by allocating them and restoring their attributes: no constructor, no `__reduce__`, no
import of anything outside the list. skops.io does this for scikit-learn alone; our graphs also hold PyTorch
modules, tensors and pandas tables, hence this module.
"""

from __future__ import annotations

import collections
import importlib
import json
import math
import types
from pathlib import Path

import numpy as np

from .cohort import LymphCastError

# Packages whose classes a bundle may name; anything else is refused when saving and when loading.
ALLOWED_PACKAGES = ("lymphcast", "sklearn", "numpy", "torch", "monai", "scipy", "statsmodels", "pandas")
# Classes that carry behaviour on construction or hold code; refused even inside allowed packages.
FORBIDDEN_NAMES = ("eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "system", "partial")


class UnsafeStateError(LymphCastError):
    pass


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _check_allowed(path: str, where: str) -> None:
    module, _, name = path.partition(":")
    if module.split(".")[0] not in ALLOWED_PACKAGES or name.split(".")[-1] in FORBIDDEN_NAMES or "<" in name:
        raise UnsafeStateError(f"{where}: class '{path}' is not one a LymphCast bundle may hold")


def _resolve_class(path: str, where: str) -> type:
    _check_allowed(path, where)
    module, _, name = path.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise UnsafeStateError(f"{where}: class '{path}' does not exist in this installation") from None
    if not isinstance(obj, type):
        raise UnsafeStateError(f"{where}: '{path}' is not a class")
    return obj


class _Encoder:
    """Walks an object graph once; shared objects are written once and referenced by number."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.memo: dict[int, int] = {}
        self.keep: list = []  # holds encoded objects alive so their ids stay unique during the walk

    def encode(self, obj, where: str):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int) and type(obj) is int:
            return obj
        if isinstance(obj, float) and type(obj) is float:
            return obj if math.isfinite(obj) else {"$float": repr(obj)}
        if id(obj) in self.memo:
            return {"$ref": self.memo[id(obj)]}
        ref = len(self.memo)
        self.memo[id(obj)] = ref
        self.keep.append(obj)
        node = self._encode_new(obj, where)
        node["$id"] = ref
        return node

    def _array(self, arr: np.ndarray) -> str:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = np.ascontiguousarray(arr)
        return key

    def _encode_new(self, obj, where: str) -> dict:
        import pandas as pd
        import torch

        if isinstance(obj, torch.Tensor):
            kind = "$parameter" if isinstance(obj, torch.nn.Parameter) else "$tensor"
            return {kind: self._array(obj.detach().cpu().numpy()), "requires_grad": bool(obj.requires_grad)}
        if isinstance(obj, np.ndarray):
            if obj.dtype.fields is not None:  # a record array (e.g. gradient-boosted trees): one array per field
                return {"$records": {f: self._array(obj[f]) for f in obj.dtype.names},
                        "descr": _descr(obj.dtype), "shape": list(obj.shape)}
            if obj.dtype.kind in "biuf":
                return {"$ndarray": self._array(obj)}
            return {"$objarray": [self.encode(v, f"{where}[]") for v in obj.ravel().tolist()],
                    "shape": list(obj.shape), "dtype": obj.dtype.str if obj.dtype.kind in "US" else "O"}
        if isinstance(obj, np.generic):
            return {"$npscalar": obj.dtype.str, "value": self.encode(obj.item(), where)}
        if isinstance(obj, np.dtype):
            return {"$dtype": obj.str} if obj.fields is None else {"$dtype": None, "descr": _descr(obj)}
        if isinstance(obj, np.random.Generator):
            return {"$generator": type(obj.bit_generator).__name__, "state": self.encode(obj.bit_generator.state, where)}
        if isinstance(obj, np.random.RandomState):
            return {"$randomstate": self.encode(obj.get_state(legacy=False), where)}
        if isinstance(obj, torch.dtype):
            return {"$torch_dtype": str(obj).removeprefix("torch.")}
        if isinstance(obj, torch.device):
            return {"$torch_device": str(obj)}
        if isinstance(obj, (pd.DataFrame, pd.Series, pd.Index)):
            return self._encode_pandas(obj, where)
        if isinstance(obj, type):
            path = _class_path(obj)
            _check_allowed(path, where)
            return {"$type": path}
        if isinstance(obj, collections.OrderedDict):
            return {"$odict": [[self.encode(k, where), self.encode(v, f"{where}.{k}")] for k, v in obj.items()]}
        if type(obj) is dict:
            if all(type(k) is str for k in obj):
                return {"$dict": {k: self.encode(v, f"{where}.{k}") for k, v in obj.items()}}
            return {"$items": [[self.encode(k, where), self.encode(v, f"{where}[{k!r}]")] for k, v in obj.items()]}
        if type(obj) in (list, tuple, set, frozenset):
            items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
            return {f"${type(obj).__name__}": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(items)]}
        if isinstance(obj, Path):
            return {"$path": str(obj)}
        if isinstance(obj, slice):
            return {"$slice": [self.encode(v, where) for v in (obj.start, obj.stop, obj.step)]}
        if isinstance(obj, types.FunctionType) and obj.__module__.split(".")[0] == "lymphcast" \
                and "<" not in obj.__qualname__:
            return {"$function": f"{obj.__module__}:{obj.__qualname__}"}  # referenced by name, never called on load
        if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.LambdaType)):
            raise UnsafeStateError(f"{where}: the function {obj!r} cannot be stored in a bundle (only named "
                                   f"functions of LymphCast can)")
        return self._encode_object(obj, where)

    def _encode_pandas(self, obj, where: str) -> dict:
        import pandas as pd

        if isinstance(obj, pd.MultiIndex):
            return {"$multiindex": [self.encode(np.asarray(obj.get_level_values(i)), where)
                                    for i in range(obj.nlevels)], "names": list(obj.names)}
        if isinstance(obj, pd.Index):
            return {"$index": self.encode(obj.to_numpy(), where), "name": self.encode(obj.name, where),
                    "dtype": str(obj.dtype)}
        if isinstance(obj, pd.Series):
            return {"$series": self.encode(obj.to_numpy(), where), "index": self.encode(obj.index, where),
                    "name": self.encode(obj.name, where), "dtype": str(obj.dtype)}
        return {"$frame": [[self.encode(c, where), self.encode(obj[c].to_numpy(), f"{where}.{c}"), str(obj[c].dtype)]
                           for c in obj.columns], "index": self.encode(obj.index, where)}

    def _encode_object(self, obj, where: str) -> dict:
        path = _class_path(type(obj))
        _check_allowed(path, where)
        state = obj.__getstate__() if hasattr(obj, "__getstate__") else vars(obj)
        if state is None and hasattr(obj, "__dict__") and not vars(obj):
            state = {}  # a plain object with no attributes (e.g. a link function)
        if state is None:  # a compiled class (e.g. scikit-learn's Cython losses): rebuilt from its own arguments
            reduced = obj.__reduce_ex__(4)
            if reduced[0] is not type(obj) or len(reduced) > 2 and reduced[2] is not None:
                raise UnsafeStateError(f"{where}: {path} keeps no attribute state and cannot be stored")
            return {"$object": path, "args": self.encode(tuple(reduced[1]), where)}
        return {"$object": path, "state": self.encode(state, where)}


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray], source: str):
        self.arrays = arrays
        self.source = source
        self.objects: dict[int, object] = {}

    def decode(self, node):
        if not isinstance(node, dict):
            if isinstance(node, list):  # plain JSON lists never occur in what we write
                raise UnsafeStateError(f"{self.source}: malformed state (bare list)")
            return node
        if "$ref" in node:
            try:
                return self.objects[node["$ref"]]
            except KeyError:
                raise UnsafeStateError(f"{self.source}: reference {node['$ref']} before its object") from None
        ref = node.get("$id")
        kind = next((k for k in node if k.startswith("$") and k != "$id"), None)
        handler = getattr(self, "_d_" + (kind or "$none")[1:], None)
        if handler is None:
            raise UnsafeStateError(f"{self.source}: unknown state node {kind!r}")
        value = handler(node, ref)
        if ref is not None:
            self.objects.setdefault(ref, value)  # scalars and types are shared too
        return value

    def _keep(self, ref, value):
        if ref is not None:
            self.objects[ref] = value
        return value

    def _array(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise UnsafeStateError(f"{self.source}: array '{key}' is missing from the weights file")
        return self.arrays[key]

    def _d_float(self, node, ref):
        return float(node["$float"])

    def _d_tensor(self, node, ref):
        import torch

        return self._keep(ref, torch.from_numpy(self._array(node["$tensor"]).copy()).requires_grad_(
            node.get("requires_grad", False)))

    def _d_parameter(self, node, ref):
        import torch

        return self._keep(ref, torch.nn.Parameter(torch.from_numpy(self._array(node["$parameter"]).copy()),
                                                  requires_grad=node.get("requires_grad", True)))

    def _d_ndarray(self, node, ref):
        return self._keep(ref, self._array(node["$ndarray"]).copy())

    def _d_objarray(self, node, ref):
        values = [self.decode(v) for v in node["$objarray"]]
        dtype = object if node.get("dtype", "O") == "O" else np.dtype(node["dtype"])
        arr = np.empty(len(values), dtype=dtype)
        arr[:] = values
        return self._keep(ref, arr.reshape(node["shape"]))

    def _d_npscalar(self, node, ref):
        return np.dtype(node["$npscalar"]).type(self.decode(node["value"]))

    def _d_dtype(self, node, ref):
        return np.dtype(node["$dtype"]) if node["$dtype"] is not None else _dtype_of(node["descr"])

    def _d_records(self, node, ref):
        arr = np.empty(node["shape"], dtype=_dtype_of(node["descr"]))
        for name, key in node["$records"].items():
            arr[name] = self._array(key)
        return self._keep(ref, arr)

    def _d_generator(self, node, ref):
        if node["$generator"] not in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
            raise UnsafeStateError(f"{self.source}: unknown random generator {node['$generator']!r}")
        bits = getattr(np.random, node["$generator"])()
        bits.state = self.decode(node["state"])
        return self._keep(ref, np.random.Generator(bits))

    def _d_randomstate(self, node, ref):
        rs = np.random.RandomState()
        rs.set_state(self.decode(node["$randomstate"]))
        return self._keep(ref, rs)

    def _d_torch_dtype(self, node, ref):
        import torch

        value = getattr(torch, node["$torch_dtype"], None)
        if not isinstance(value, torch.dtype):
            raise UnsafeStateError(f"{self.source}: unknown tensor type {node['$torch_dtype']!r}")
        return value

    def _d_torch_device(self, node, ref):
        import torch

        return torch.device(node["$torch_device"])

    def _d_index(self, node, ref):
        import pandas as pd

        return self._keep(ref, pd.Index(self.decode(node["$index"]), name=self.decode(node["name"]),
                                        dtype=node.get("dtype")))

    def _d_multiindex(self, node, ref):
        import pandas as pd

        return self._keep(ref, pd.MultiIndex.from_arrays([self.decode(v) for v in node["$multiindex"]],
                                                         names=node["names"]))

    def _d_series(self, node, ref):
        import pandas as pd

        return self._keep(ref, pd.Series(self.decode(node["$series"]), index=self.decode(node["index"]),
                                         name=self.decode(node["name"])).astype(node["dtype"]))

    def _d_frame(self, node, ref):
        import pandas as pd

        columns = {self.decode(c): pd.Series(self.decode(v)).astype(dtype) for c, v, dtype in node["$frame"]}
        frame = pd.DataFrame(columns)
        frame.index = self.decode(node["index"])
        return self._keep(ref, frame)

    def _d_type(self, node, ref):
        return _resolve_class(node["$type"], self.source)

    def _d_odict(self, node, ref):
        out = self._keep(ref, collections.OrderedDict())
        out.update((self.decode(k), self.decode(v)) for k, v in node["$odict"])
        return out

    def _d_dict(self, node, ref):
        out = self._keep(ref, {})
        out.update((k, self.decode(v)) for k, v in node["$dict"].items())
        return out

    def _d_items(self, node, ref):
        out = self._keep(ref, {})
        out.update((self.decode(k), self.decode(v)) for k, v in node["$items"])
        return out

    def _d_list(self, node, ref):
        out = self._keep(ref, [])
        out.extend(self.decode(v) for v in node["$list"])
        return out

    def _d_tuple(self, node, ref):
        return self._keep(ref, tuple(self.decode(v) for v in node["$tuple"]))

    def _d_set(self, node, ref):
        return self._keep(ref, {self.decode(v) for v in node["$set"]})

    def _d_frozenset(self, node, ref):
        return self._keep(ref, frozenset(self.decode(v) for v in node["$frozenset"]))

    def _d_function(self, node, ref):
        module, _, name = node["$function"].partition(":")
        if module.split(".")[0] != "lymphcast":
            raise UnsafeStateError(f"{self.source}: function '{node['$function']}' is outside LymphCast")
        try:
            value = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            raise UnsafeStateError(f"{self.source}: function '{node['$function']}' does not exist") from None
        if not isinstance(value, types.FunctionType):
            raise UnsafeStateError(f"{self.source}: '{node['$function']}' is not a function")
        return value

    def _d_slice(self, node, ref):
        return slice(*(self.decode(v) for v in node["$slice"]))

    def _d_path(self, node, ref):
        return Path(node["$path"])

    def _d_object(self, node, ref):
        cls = _resolve_class(node["$object"], self.source)
        if "args" in node:  # only plain values reach an allow-listed class's constructor
            return self._keep(ref, cls(*self.decode(node["args"])))
        obj = self._keep(ref, cls.__new__(cls))
        state = self.decode(node["state"])
        if hasattr(obj, "__setstate__"):
            obj.__setstate__(state)
        elif isinstance(state, dict):
            obj.__dict__.update(state)
        else:
            raise UnsafeStateError(f"{self.source}: {node['$object']} cannot take the stored state")
        return obj


def _descr(dtype: np.dtype) -> list:
    return [[name, dtype.fields[name][0].str] for name in dtype.names]


def _dtype_of(descr: list) -> np.dtype:
    if not all(isinstance(d, list) and len(d) == 2 and all(isinstance(x, str) for x in d) for d in descr):
        raise UnsafeStateError("malformed record type in a model state")
    return np.dtype([(name, np.dtype(kind)) for name, kind in descr])


def save_state(obj, folder: Path, name: str) -> list[str]:
    """Write `obj` as `<name>.json` + `<name>.safetensors` in `folder`; return the two file names."""
    from safetensors.numpy import save_file

    encoder = _Encoder()
    tree = encoder.encode(obj, name)
    (folder / f"{name}.json").write_text(json.dumps({"format": 1, "root": tree}, allow_nan=False), encoding="utf-8")
    save_file(encoder.arrays, str(folder / f"{name}.safetensors"))
    return [f"{name}.json", f"{name}.safetensors"]


def load_state(folder: Path, name: str):
    """Rebuild the object saved by save_state; a file that names anything outside the allow-list is refused."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    tree_file, weights_file = folder / f"{name}.json", folder / f"{name}.safetensors"
    try:
        tree = json.loads(tree_file.read_text(encoding="utf-8"))
        arrays = load_file(str(weights_file))
    except (OSError, ValueError, SafetensorError) as exc:
        raise LymphCastError(f"cannot read the model '{name}' in '{folder}': {exc}") from None
    if not isinstance(tree, dict) or tree.get("format") != 1 or "root" not in tree:
        raise UnsafeStateError(f"'{tree_file}' is not a LymphCast model state")
    return _Decoder(arrays, str(tree_file)).decode(tree["root"])
