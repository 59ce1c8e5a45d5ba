"Shared pytest set-up."
import pytest, torch


@pytest.fixture(autouse=True, scope='session')
def one_thread():
    "The tests run tiny models, which lose more to thread synchronisation than they gain: one thread, from the first fixture on."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
