import numpy as np

from kerastune_nlp.training.optimizer import WarmupLinearDecay


def test_schedule_warms_up_linearly_then_decays_to_zero():
    schedule = WarmupLinearDecay(1e-4, total_steps=100, warmup_steps=10)
    rates = np.array([float(schedule(step)) for step in (0, 5, 10, 55, 100, 120)])
    np.testing.assert_allclose(rates, [0.0, 5e-5, 1e-4, 5e-5, 0.0, 0.0], atol=1e-9)


def test_schedule_round_trips_through_config():
    schedule = WarmupLinearDecay(3e-5, total_steps=50, warmup_steps=5)
    clone = WarmupLinearDecay(**schedule.get_config())
    assert float(clone(20)) == float(schedule(20))
