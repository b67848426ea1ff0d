"""Rolling-update arithmetic against the Kubernetes Deployment controller's rules."""

from hypothesis import given
from hypothesis import strategies as st
from lightkube.models.apps_v1 import DeploymentStrategy

from dockyard.controllers.rollout import ReplicaSetState, fenceposts, plan, template_hash


def S(d):
    return DeploymentStrategy.from_dict(d)


def test_fenceposts_defaults_round_surge_up_and_unavailable_down():
    assert fenceposts(None, 1) == (1, 0)
    assert fenceposts(None, 10) == (3, 2)
    assert fenceposts(S({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}), 3) == (0, 1)


def test_surge_first_then_scale_down():
    new, old = ReplicaSetState("new", 0, 0), [ReplicaSetState("old", 1, 1)]
    assert plan(desired=1, strategy=None, new=new, old=old) == {"new": 1}
    assert plan(desired=1, strategy=None, new=ReplicaSetState("new", 1, 1), old=old) == {"old": 0}


def test_max_unavailable_one_replaces_in_place():
    strategy = S({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    assert plan(desired=1, strategy=strategy, new=ReplicaSetState("new", 0, 0), old=[ReplicaSetState("old", 1, 1)]) == {
        "old": 0
    }
    assert plan(desired=1, strategy=strategy, new=ReplicaSetState("new", 0, 0), old=[ReplicaSetState("old", 0, 0)]) == {
        "new": 1
    }


def test_recreate():
    strategy = S({"type": "Recreate"})
    assert plan(desired=2, strategy=strategy, new=ReplicaSetState("new", 0, 0), old=[ReplicaSetState("old", 2, 2)]) == {
        "old": 0
    }
    assert plan(desired=2, strategy=strategy, new=ReplicaSetState("new", 0, 0), old=[ReplicaSetState("old", 0, 0)]) == {
        "new": 2
    }
    # an old pod still in its grace period (Terminating) runs: the new ones wait for it (oldPodsRunning)
    terminating = [ReplicaSetState("old", 0, 0, running=1)]
    assert plan(desired=2, strategy=strategy, new=ReplicaSetState("new", 0, 0), old=terminating) == {}


def test_template_hash_is_stable_and_order_independent():
    assert template_hash({"a": 1, "b": [1, 2]}) == template_hash({"b": [1, 2], "a": 1})
    assert len(template_hash({})) == 10


@given(
    desired=st.integers(0, 20),
    new_r=st.integers(0, 20),
    old_r=st.integers(0, 20),
    surge=st.integers(0, 5),
    unavail=st.integers(0, 5),
)
def test_rolling_update_bounds(desired, new_r, old_r, surge, unavail):
    strategy = S({"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavail}})
    max_surge, max_unavailable = fenceposts(strategy, desired)
    new = ReplicaSetState("new", new_r, new_r)
    old = [ReplicaSetState("old", old_r, old_r)]
    out = plan(desired=desired, strategy=strategy, new=new, old=old)
    after_new = out.get("new", new_r)
    after_old = out.get("old", old_r)
    assert after_new <= max(desired, new_r) and after_new >= 0 and after_old >= 0
    if "new" in out and out["new"] > new_r:  # scaling up never exceeds desired + maxSurge
        assert after_new + old_r <= desired + max_surge
    if "old" in out:  # scaling down keeps desired - maxUnavailable available
        assert after_old + new_r >= min(desired - max_unavailable, old_r + new_r)


def test_scale_down_counts_the_new_sets_unavailable_replicas():
    """Kubernetes' ``maxScaledDown`` (rolling.go ``reconcileOldReplicaSets``): old replicas go only as far
    as ``allPods - minAvailable - newRSUnavailable``, so an old set's stale ``availableReplicas`` (its
    pods being deleted still counted) never takes availability below ``desired - maxUnavailable``."""
    strategy = S({"rollingUpdate": {"maxSurge": 2, "maxUnavailable": 1}})
    # first step: new 0 → 2, old 3 → 2 (2 available remain)
    assert plan(desired=3, strategy=strategy, new=ReplicaSetState("new", 0, 0), old=[ReplicaSetState("old", 3, 3)]) == {
        "new": 2,
        "old": 2,
    }
    # next step, old status not yet caught up (3 available for spec 2): the new set is not available,
    # so nothing more of the old one may go
    assert plan(desired=3, strategy=strategy, new=ReplicaSetState("new", 2, 0), old=[ReplicaSetState("old", 2, 3)]) == {
        "new": 3
    }
    # once new replicas are available, old ones go (2 new available = desired - maxUnavailable)
    assert plan(desired=3, strategy=strategy, new=ReplicaSetState("new", 3, 2), old=[ReplicaSetState("old", 2, 2)]) == {
        "old": 0
    }
