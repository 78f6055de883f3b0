"""Data-parallel training with `jax.pmap`, on one host or many.

The state is replicated on every device; each device takes its rows of the global batch (see
steps.shard) and gradients are averaged with `lax.pmean` once, inside the steps. Every random
draw is a function of the global batch, so a run gives the same numbers on 1 device, on 8, or
on 2 processes of 4.

Multi-host: every process holds the whole (in-memory) dataset and its devices gather only their
own rows of each global batch, which keeps the batches independent of the process layout.
"""

from __future__ import annotations

import functools
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan_jax import engine
from gan_jax.spec import Spec

AXIS = "devices"
DISTRIBUTED_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def maybe_initialize_distributed() -> bool:
    """Calls `jax.distributed.initialize` when the usual environment names a coordinator."""
    if not all(os.environ.get(name) for name in DISTRIBUTED_ENV):
        return False
    jax.distributed.initialize(
        coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
        num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
        process_id=int(os.environ["JAX_PROCESS_ID"]),
    )
    return True


HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def one_cpu_device_per_core() -> bool:
    """Asks XLA, before JAX starts its backends, for one CPU device per usable core, unless
    XLA_FLAGS already sets a host device count (which is how to opt out: `XLA_FLAGS=
    --xla_force_host_platform_device_count=1`). A sweep then runs its members' programs side by
    side, one device each, where one device runs each op across every core: on the 2-core VM,
    ring-demo sweeps of 2 to 64 members ran 1.5-1.7x and 2014-nets sweeps 1.1x the
    member-iterations/s of one device (README, Sweeps). Accelerator devices are unaffected.
    Returns whether it set the flag."""
    flags_now = os.environ.get("XLA_FLAGS", "")
    if HOST_DEVICES_FLAG in flags_now:
        return False
    cores = len(os.sched_getaffinity(0))
    os.environ["XLA_FLAGS"] = f"{flags_now} {HOST_DEVICES_FLAG}={cores}".strip()
    return True


def check_batch_divides(batch_size: int) -> None:
    """Raises ValueError, naming both numbers, unless the global batch splits evenly over
    every device (pmap gives each the same number of rows)."""
    devices = jax.device_count()
    if batch_size % devices:
        raise ValueError(
            f"config.train.batch_size = {batch_size} is not allowed with parallel=pmap on"
            f" {devices} devices; expected a multiple of {devices}"
        )


def replicate(tree):
    """One copy of `tree` on each local device (leading axis = local devices), laid out the way
    pmap expects its inputs, so the copies are made once and not at every call."""
    devices = jax.local_devices()
    sharding = NamedSharding(Mesh(np.array(devices), (AXIS,)), PartitionSpec(AXIS))

    def put(x):
        x = np.asarray(x)
        return jax.device_put(np.broadcast_to(x, (len(devices), *x.shape)), sharding)

    return jax.tree.map(put, tree)


def unreplicate(tree):
    """This process's first device copy (all copies are equal: updates are averaged across
    devices). Read from local memory: indexing a multi-host array would be a collective that
    every process must join, and only process 0 writes files."""

    def first(x):
        local = x.addressable_data(0)
        return local[0] if local.ndim == x.ndim else local

    return jax.tree.map(first, tree)


def pmap_steps(spec: Spec) -> engine.Steps:
    """The pmapped entry points of a spec made with `axis_name=AXIS`; the state and dataset are
    replicated (leading axis = local devices), the hparams broadcast, the state donated."""
    pmap = functools.partial(jax.pmap, axis_name=AXIS, in_axes=(0, 0, None), donate_argnums=0)
    return engine.Steps(
        spec=spec,
        init=jax.jit(functools.partial(engine.init, spec=spec)),
        d_update=pmap(functools.partial(engine.d_update, spec=spec)),
        g_update=pmap(functools.partial(engine.g_update, spec=spec)),
        run_chunk=pmap(
            functools.partial(engine.run_chunk, spec=spec, num_iterations=spec.scan_steps or 1)
        ),
    )
