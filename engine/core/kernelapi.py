"""How the compiled core's kernels are declared and what they receive.

Every kernel takes the whole state as one argument (`CoreState`, ``st``) or a reference to it
(``sp``, whose tables read as ``sp.ords``, ...), plus int64 scalars and a few flags; `kernel`
derives one explicit numba signature from the parameter names. The tables' columns are in
`engine.core.layout`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed, lower_getattr_generic
from numba.core.typing.templates import AttributeTemplate, infer_getattr
from numba.extending import intrinsic

DEAD_STORE_SEARCH_LIMIT = 1_000
"""How far LLVM's dead-store elimination may look (its defaults: 90 steps, 150 memory
instructions). Why: numba zero-fills every stack slot in the function's entry block (each
call's return slot, each local that escapes), and in a kernel as large as ``place`` the pass
gave up before proving those stores dead: ~25 of them ran on every order. With the limits at
1,000 they are gone (place's entry block 42 -> 17 instructions; 300 was not enough) at no
measurable compile time. Set once per process, before any kernel compiles; code already in
numba's on-disk cache keeps the stores (clear ``__pycache__`` to rebuild). Changes no value."""

for _option in ("walklimit", "scanlimit"):
    llvm.set_option("kootabase", f"-dse-memoryssa-{_option}={DEAD_STORE_SEARCH_LIMIT}")

_I64 = types.int64
_ARRAY_ARGS = {
    # the state arrays (CoreState's fields, in order) ...
    "ords": types.int64[:, ::1],
    "olnk": types.int32[:, ::1],
    "idx": types.int32[:, ::1],
    "oidx": types.int64[::1],
    "lvl": types.int64[:, ::1],
    "bkl": types.int32[:, ::1],
    "bkn": types.int64[::1],
    "bal": types.int64[:, :, ::1],
    "sysb": types.int64[:, ::1],
    "mkt": types.int64[:, ::1],
    "acct": types.int64[:, ::1],
    "ctr": types.int64[::1],
    "ofree": types.int32[::1],
    "lfree": types.int32[::1],
    "ev": types.int64[:, ::1],
    # ... command rows and helper buffers
    "c": types.int64[:, ::1],
    "cr": types.CPointer(types.int64),
    "cols": types.int64[:, ::1],
    "by_id": types.int64[::1],
    "slots": types.int64[::1],
    "out": types.int64[::1],
}
_BOOL_ARGS = frozenset(
    {
        "is_limit",
        "quote_bounded",
        "rest_ok",
        "kept",
        "reset_events",
        "state_only",
        "trading",
        "deep_book",
        "many_accounts",
    }
)


class CoreState(NamedTuple):
    """The compiled core's whole mutable state as one kernel argument (``st``).

    Kernels read ``st.ords``, ``st.bal``, ...; a new table is one field here, one entry in
    `_ARRAY_ARGS` and one allocation in `CoreArrays`, instead of a new parameter threaded
    through every kernel. Kernels called from Python take ``st``; kernels call each other with
    a reference to it (``sp``, `state_ref`). Small helpers that touch two or three tables still
    take those arrays.
    """

    ords: np.ndarray
    olnk: np.ndarray
    idx: np.ndarray
    oidx: np.ndarray
    lvl: np.ndarray
    bkl: np.ndarray
    bkn: np.ndarray
    bal: np.ndarray
    sysb: np.ndarray
    mkt: np.ndarray
    acct: np.ndarray
    ctr: np.ndarray
    ofree: np.ndarray
    lfree: np.ndarray
    ev: np.ndarray


_STATE_TYPE = types.NamedTuple([_ARRAY_ARGS[name] for name in CoreState._fields], CoreState)
_ARRAY_ARGS["st"] = _STATE_TYPE
_ARRAY_ARGS["sp"] = types.CPointer(_STATE_TYPE)
"""The state passed by reference (``sp``) between kernels: see `state_ref`."""


def _fixed_widths(context, builder, name, value):  # type: ignore[no-untyped-def]
    """Codegen: ``value`` (table ``name``) with its row width and strides as constants.

    numba addresses ``ords[s, O_QTY]`` as ``data + (s * shape[1] + O_QTY) * 8``, with
    ``shape[1]`` loaded from the array's descriptor: one more load (and one more live
    register) per access, and an ``imul`` where a shift or an ``lea`` would do. The widths are
    `engine.core.layout.ROW_WIDTHS` (imported here, at compile time: layout imports this
    module); `CoreArrays.state` refuses tables of any other width."""
    from engine.core.layout import ROW_WIDTHS

    width = ROW_WIDTHS.get(name)
    if width is None:
        return value
    ary_type = _ARRAY_ARGS[name]
    ary = context.make_array(ary_type)(context, builder, value=value)
    intp = context.get_value_type(types.intp)
    itemsize = context.get_abi_sizeof(context.get_data_type(ary_type.dtype))
    shape = cgutils.unpack_tuple(builder, ary.shape)
    strides = cgutils.unpack_tuple(builder, ary.strides)
    shape[-1] = intp(width)
    strides[-1] = intp(itemsize)
    if ary_type.ndim >= 2:
        strides[-2] = intp(width * itemsize)
    ary.shape = cgutils.pack_array(builder, shape)
    ary.strides = cgutils.pack_array(builder, strides)
    return ary._getvalue()


@infer_getattr
class _StateRefAttributes(AttributeTemplate):
    """``sp.ords``, ``sp.ev``, ...: a table read through the state reference where it is used.

    `load_state` loads every field a kernel uses at the point of the call (its entry), and
    a long kernel then keeps them all in registers and stack slots: place stored and reloaded
    ~45 of them per order. ``sp.X`` loads table X's fields at the access, so a field is
    loaded where it is needed (LLVM still merges loads that no store separates); bind a local
    (``ev = sp.ev``) before a run of stores into the same table, whose stores would otherwise
    make every access load it again.
    """

    key = types.CPointer

    def generic_resolve(self, typ, attr):  # type: ignore[no-untyped-def]
        if typ.dtype is _STATE_TYPE and attr in CoreState._fields:
            return _ARRAY_ARGS[attr]
        return None


@lower_getattr_generic(types.CPointer)
def _state_ref_getattr(context, builder, typ, value, attr):  # type: ignore[no-untyped-def]
    index = CoreState._fields.index(attr)
    model = context.data_model_manager[typ.dtype]
    i32 = ir.IntType(32)
    field_ptr = builder.gep(value, [i32(0), i32(index)])
    field_model = context.data_model_manager[_ARRAY_ARGS[attr]]
    assert model.get_data_type().elements[index] == field_model.get_data_type()
    result = field_model.from_data(builder, builder.load(field_ptr))
    result = _fixed_widths(context, builder, attr, result)
    return impl_ret_borrowed(context, builder, _ARRAY_ARGS[attr], result)


@intrinsic
def state_ref(typingctx, st):  # type: ignore[no-untyped-def]
    """A pointer to a copy of ``st`` in the caller's frame: what kernels pass to each other.

    Numba flattens an aggregate argument into scalars, so a call passing the `CoreState`
    itself pushes ~130 words (16 arrays of 7-11 fields) on the stack: measured at ~45 % of the
    CPU of workload (c). Entry kernels (called from Python with ``st``) take the reference once
    per batch; every other kernel takes ``sp`` and reads the fields it uses (`load_state`).
    """
    sig = types.CPointer(st)(st)

    def codegen(context, builder, signature, args):
        model = context.data_model_manager[signature.args[0]]
        slot = cgutils.alloca_once(builder, model.get_data_type())
        builder.store(model.as_data(builder, args[0]), slot)
        return slot

    return sig, codegen


@intrinsic
def load_state(typingctx, sp):  # type: ignore[no-untyped-def]
    """The `CoreState` behind ``sp`` (LLVM loads only the fields the kernel uses, all at
    this call: in a long kernel prefer ``sp.X`` at the access, see `_StateRefAttributes`)."""
    sig = sp.dtype(sp)

    def codegen(context, builder, signature, args):
        model = context.data_model_manager[signature.return_type]
        state = model.from_data(builder, builder.load(args[0]))
        for index, name in enumerate(CoreState._fields):
            table = _fixed_widths(context, builder, name, builder.extract_value(state, index))
            state = builder.insert_value(state, table, index)
        return state

    return sig, codegen


@intrinsic
def row_ref(typingctx, c, i):  # type: ignore[no-untyped-def]
    """A pointer to command row ``i`` of ``c`` (``cr``: kernels read ``cr[R_SEQ]``, ...).

    Passing ``c`` and ``i`` instead pushed the array's 9 flattened fields and the row number
    on the stack at every call of the place and amend kernels (place_check, place_fields,
    new_slot, add_pending, amend_check); the pointer is one register. ``i`` must be a valid
    row (the batch loop's own index): no bounds check, as for every kernel access.
    """
    sig = types.CPointer(c.dtype)(c, i)

    def codegen(context, builder, signature, args):
        zero = context.get_constant(types.intp, 0)
        return _item_pointer(context, builder, signature.args[0], args[0], [args[1], zero])

    return sig, codegen


def _item_pointer(context, builder, ary_type, value, indices):  # type: ignore[no-untyped-def]
    """Codegen: the address of ``value[indices]`` (intp indexes), no wraparound, no check."""
    ary = context.make_array(ary_type)(context, builder, value)
    return cgutils.get_item_pointer2(
        context,
        builder,
        ary.data,
        cgutils.unpack_tuple(builder, ary.shape),
        cgutils.unpack_tuple(builder, ary.strides),
        ary_type.layout,
        indices,
        wraparound=False,
    )


@intrinsic
def nonneg(typingctx, x):  # type: ignore[no-untyped-def]
    """``x`` unchanged, with the promise to LLVM that it is >= 0 (``llvm.assume``).

    numba wraps every signed array index (``i < 0 ? i + shape : i``: a shift, an and, an add
    and a load of the shape) unless LLVM can prove the index non-negative. Slots, level ids,
    accounts and markets that the caller has already validated (or read from a link that is
    >= 0 when followed) are passed through this at the top of the hot kernels, so the
    wraparound folds away. A negative ``x`` here is a bug (undefined behaviour, as an
    out-of-bounds index already is: kernels run without bounds checks).
    """
    sig = x(x)

    def codegen(context, builder, signature, args):
        value = args[0]
        assume = builder.module.declare_intrinsic(
            "llvm.assume", fnty=ir.FunctionType(ir.VoidType(), [ir.IntType(1)])
        )
        builder.call(assume, [builder.icmp_signed(">=", value, value.type(0))])
        return value

    return sig, codegen


@intrinsic
def prefetch(typingctx, arr, i, j):  # type: ignore[no-untyped-def]
    """Ask the CPU to bring ``arr[i, j]`` (``arr[i]`` of a 1-d array; the row ``arr[i, j, :]``
    of a 3-d one) into cache, for writing (``llvm.prefetch``): no value, no fault, no effect on
    the state, so it may be asked for any row a later command will probably touch. The address
    is computed without wraparound or bounds check; callers pass indexes they have bounded.
    """
    sig = types.void(arr, i, j)

    def codegen(context, builder, signature, args):
        ary_type = signature.args[0]
        zero = context.get_constant(types.intp, 0)
        i_, j_ = (
            context.cast(builder, v, t, types.intp)
            for v, t in zip(args[1:], signature.args[1:], strict=True)
        )
        indices = [i_, j_, *([zero] * (ary_type.ndim - 2))][: ary_type.ndim]
        ptr = _item_pointer(context, builder, ary_type, args[0], indices)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", [i8p], ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        )
        # write intent (the rows are updated), keep in all levels, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


def _hidden(builder: Any, value: Any) -> Any:
    """``value`` (an i64) passed through an empty inline asm, whose result LLVM cannot see
    through: arithmetic on it stays arithmetic (`below_mask`, `opaque`)."""
    i64 = ir.IntType(64)
    return builder.asm(ir.FunctionType(i64, [i64]), "", "=r,0", [value], False)


@intrinsic
def below_mask(typingctx, a, b):  # type: ignore[no-untyped-def]
    """-1 when ``a < b``, else 0, computed without a branch: ``(a - b) >> 63``.

    For a binary search whose steps go either way at random (a new price uniform over a side's
    levels): LLVM rewrites a select or this very shift into a compare, and its x86 back end
    turns a compare-driven select inside a loop back into a branch, which then mispredicts
    about every other step. The difference passes through an empty inline asm, which LLVM
    cannot see through, so the arithmetic stays. Callers guarantee ``a - b`` cannot overflow
    (keys bounded by MAX_AMOUNT_ATOMS < 2**62).
    """
    sig = types.int64(types.int64, types.int64)

    def codegen(context, builder, signature, args):
        diff = _hidden(builder, builder.sub(args[0], args[1]))
        return builder.ashr(diff, ir.IntType(64)(63))

    return sig, codegen


@intrinsic
def opaque(typingctx, x):  # type: ignore[no-untyped-def]
    """``x`` unchanged, through an empty inline asm: LLVM cannot see its value, so it cannot
    turn arithmetic on it back into a compare and a branch (see `below_mask`)."""
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        return _hidden(builder, args[0])

    return sig, codegen


@intrinsic
def unlikely(typingctx, cond):  # type: ignore[no-untyped-def]
    """``cond`` unchanged, with the hint that it is almost always false (``llvm.expect``).

    For the rejection branches of the place and amend checks: LLVM lays out the
    blocks a branch probably skips after the function's hot path, so the code one command runs
    is contiguous and takes fewer instruction-cache lines (the kernels' code together is larger
    than the first-level instruction cache). A hint only: no value changes. Used where one
    test rejects; on the invariant failures and on the multi-clause checks inside
    ``place_check`` it was measured and gave no gain (docs/benchmarks.md).
    """
    sig = types.boolean(types.boolean)

    def codegen(context, builder, signature, args):
        i1 = ir.IntType(1)
        fn = builder.module.declare_intrinsic("llvm.expect", [i1], ir.FunctionType(i1, [i1, i1]))
        return builder.call(fn, [args[0], i1(0)])

    return sig, codegen


def kernel(
    fn: Callable[..., Any] | None = None,
    *,
    generic: dict[str, list[Any]] | None = None,
    inline: bool = False,
):
    """Decorator of every core kernel: nopython, cached on disk, no NRT (kernels never
    allocate, so no reference counting is emitted), numpy error model (no zero-division
    branches: every divisor is validated >= 1 before use).

    The signature is explicit, derived from the parameter names (state arrays by name, flags
    in ``_BOOL_ARGS``, every other scalar int64): one compiled version per function instead of
    one per combination of literal, int32 and int64 arguments at its call sites (which
    multiplied compile time). ``generic`` maps a parameter to the list of its types (one
    version per entry, e.g. a helper used on int32 and int64 arrays). ``inline`` merges the
    kernel's body into every kernel that calls it (numba IR inlining): for the hot place path,
    whose out-of-line calls cost register spills and tuple returns through memory.
    """

    def wrap(f: Callable[..., Any]) -> Any:
        names = list(inspect.signature(f).parameters)
        variants: list[tuple[Any, ...]] = [()]
        for name in names:
            if generic and name in generic:
                options = generic[name]
            elif name in _ARRAY_ARGS:
                options = [_ARRAY_ARGS[name]]
            elif name in _BOOL_ARGS:
                options = [types.boolean]
            else:
                options = [_I64]
            variants = [(*v, t) for v in variants for t in options]
        return njit(
            variants,
            cache=True,
            nogil=True,
            error_model="numpy",
            _nrt=False,
            inline="always" if inline else "never",
        )(f)

    return wrap(fn) if fn is not None else wrap
