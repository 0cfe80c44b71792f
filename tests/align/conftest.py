import pytest

from vtbench.align import backends

CPU_BACKENDS = ["torch"] + [name for name in ("cpu",) if backends._usable(name, __import__("torch").device("cpu"))]


@pytest.fixture(params=CPU_BACKENDS)
def backend(request):
    """Every backend that runs on CPU tensors here (the triton interpreter has its own tests)."""
    return request.param
