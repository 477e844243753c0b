"""A program that calls pickleguard.install() and then uses multiprocessing the ways real
programs do. Run by tests/test_python_install.py in a fresh interpreter, so the import order
is real: ``before`` installs first thing (as docs/python.md recommends), ``after`` imports
multiprocessing / torch / concurrent.futures first.

Usage: mp_under_install.py ORDER CHECK[,CHECK...] START_METHOD  (prints "ok CHECK" for each)
"""

import os
import sys

ORDER, CHECKS, METHOD = sys.argv[1], sys.argv[2].split(","), sys.argv[3]

if ORDER == "before":
    import pickleguard
    pickleguard.install()

import concurrent.futures  # noqa: E402
import multiprocessing  # noqa: E402
import multiprocessing.managers  # noqa: E402,F401

if ORDER == "after":
    import pickleguard
    pickleguard.install()

MARKER = "pickleguard-marker-{}"


def square(x):
    return x * x


def echo_queue(q_in, q_out):
    q_out.put(q_in.get())


def echo_pipe(conn):
    conn.send(conn.recv())
    conn.close()


class Payload:
    """Loading it would run os.system (touching a marker file)."""

    def __reduce__(self):
        return (os.system, ("touch " + MARKER.format("ipc-" + METHOD),))


def make_payload(_):
    return Payload()


def dataset():
    import torch
    from torch.utils.data import TensorDataset
    return TensorDataset(torch.arange(40, dtype=torch.float32).reshape(20, 2),
                         torch.arange(20))


def run(CHECK: str) -> None:
    ctx = multiprocessing.get_context(METHOD)
    assert pickleguard.is_installed()
    if CHECK == "pool":
        with ctx.Pool(2) as pool:
            assert pool.map(square, range(30)) == [x * x for x in range(30)]
            assert pool.apply_async(square, (7,)).get(timeout=60) == 49
    elif CHECK == "executor":
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
            assert list(ex.map(square, range(20))) == [x * x for x in range(20)]
    elif CHECK == "queue":
        q_in, q_out = ctx.Queue(), ctx.Queue()
        p = ctx.Process(target=echo_queue, args=(q_in, q_out))
        p.start()
        q_in.put({"a": [1, 2.5], "b": b"x"})
        assert q_out.get(timeout=60) == {"a": [1, 2.5], "b": b"x"}
        p.join(60)
        assert p.exitcode == 0
        a, b = ctx.Pipe()
        p = ctx.Process(target=echo_pipe, args=(b,))
        p.start()
        a.send(("tuple", 3))
        assert a.recv() == ("tuple", 3)
        p.join(60)
        assert p.exitcode == 0
    elif CHECK == "manager":
        with ctx.Manager() as m:
            d = m.dict()
            lst = m.list([1, 2])
            d["k"] = [1, 2, 3]
            lst.append(3)
            assert d["k"] == [1, 2, 3] and list(lst) == [1, 2, 3]
    elif CHECK == "dataloader":
        import torch
        from torch.utils.data import DataLoader
        dl = DataLoader(dataset(), batch_size=4, num_workers=2,
                        multiprocessing_context=METHOD)
        xs = torch.cat([x for x, _ in dl])
        assert xs.shape == (20, 2) and float(xs.sum()) == float(sum(range(40)))
    elif CHECK == "refused-task":
        # A task the IPC judgement refuses is an error in the caller, not a hang.
        with ctx.Pool(2) as pool:
            try:
                pool.map(os.system, ["touch " + MARKER.format("task-" + METHOD)])
            except pickleguard.PickleSecurityError as e:
                assert "posix.system" in str(e) or "os.system" in str(e), e
            else:
                raise AssertionError("a pool task calling os.system was not refused")
            assert pool.map(square, [3]) == [9]  # the pool still works
        assert not os.path.exists(MARKER.format("task-" + METHOD))
    elif CHECK == "refused-result":
        with ctx.Pool(2) as pool:
            try:
                pool.map(make_payload, [1])
            except Exception as e:
                assert "refused" in str(e), repr(e)
            else:
                raise AssertionError("a result that loads os.system was not refused")
            assert pool.map(square, [4]) == [16]
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as ex:
            try:
                ex.submit(make_payload, 1).result(timeout=120)
            except Exception as e:
                assert "refused" in str(e), repr(e)
            else:
                raise AssertionError("a future's result that loads os.system was not refused")
        assert not os.path.exists(MARKER.format("ipc-" + METHOD))
    else:
        raise SystemExit(f"unknown check {CHECK}")
    # Outside the IPC paths the installed guard still judges everything.
    import pickle
    try:
        pickle.loads(pickle.dumps(Payload()))
    except pickleguard.PickleSecurityError:
        pass
    else:
        raise AssertionError("pickle.loads of a payload was not refused")
    print("ok", CHECK, flush=True)


if __name__ == "__main__":
    for check in CHECKS:
        run(check)
