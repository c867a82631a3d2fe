"""Who may fetch an ExecutionRequest's artifacts: the review bodies the API sends and how it reads the answers."""

from __future__ import annotations

import pytest

from executioner.api.kubernetes_access import (
    KubernetesUser,
    access_allowed,
    access_review,
    execution_id_of,
    is_execution_of,
    reviewed_user,
    token_review,
)
from executioner.execution_requests import artifact_api_path, owner_of
from executioner.models import Execution, Limits

SA_USER = {
    "username": "system:serviceaccount:team-a:plot-reader",
    "uid": "5f0c",
    "groups": ["system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"],
    "extra": {"authentication.kubernetes.io/pod-name": ["p"]},
}


def answer(authenticated=True, user=SA_USER, audiences=("executioner",)):
    return {"status": {"authenticated": authenticated, "user": user, "audiences": list(audiences)}}


def test_the_token_review_asks_for_the_apis_audiences_or_the_api_servers_own():
    assert token_review("t", ["executioner"])["spec"] == {"token": "t", "audiences": ["executioner"]}
    assert token_review("t", [])["spec"] == {"token": "t"}


def test_an_authenticated_token_is_its_user_with_groups_and_extra():
    user = reviewed_user(answer(), ["executioner"])
    assert user == KubernetesUser(
        username="system:serviceaccount:team-a:plot-reader",
        uid="5f0c",
        groups=("system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"),
        extra={"authentication.kubernetes.io/pod-name": ["p"]},
    )


@pytest.mark.parametrize(
    "review",
    [
        answer(authenticated=False),
        {"status": {"authenticated": "true", "user": SA_USER, "audiences": ["executioner"]}},  # not a boolean true
        answer(user={"username": ""}),
        answer(user=None),
        answer(audiences=["https://kubernetes.default.svc"]),  # a token for the Kubernetes API itself
        answer(audiences=[]),
        {"status": {}},
        {},
    ],
)
def test_anything_but_an_authenticated_user_with_the_audience_is_no_one(review):
    assert reviewed_user(review, ["executioner"]) is None


def test_without_audiences_configured_the_answer_is_taken_as_the_api_server_gave_it():
    assert reviewed_user(answer(audiences=["https://kubernetes.default.svc"]), []) is not None


def test_the_access_review_asks_whether_exactly_that_user_may_get_exactly_that_resource():
    user = reviewed_user(answer(), ["executioner"])
    assert user is not None
    review = access_review(user, "team-a", "plot")
    assert (review["apiVersion"], review["kind"]) == ("authorization.k8s.io/v1", "SubjectAccessReview")
    assert review["spec"] == {
        "user": SA_USER["username"],
        "uid": "5f0c",
        "groups": SA_USER["groups"],
        "extra": SA_USER["extra"],
        "resourceAttributes": {
            "namespace": "team-a",
            "verb": "get",
            "group": "executioner.dev",
            "version": "v1alpha1",
            "resource": "executionrequests",
            "name": "plot",
        },
    }


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        ({"allowed": True}, True),
        ({"allowed": False}, False),
        ({"allowed": False, "denied": True}, False),
        ({"allowed": True, "denied": True}, False),  # an explicit deny wins
        ({"allowed": "true"}, False),
        ({}, False),
    ],
)
def test_only_an_explicit_allow_allows(status, allowed):
    assert access_allowed({"status": status}) is allowed
    assert access_allowed({}) is False


def record(owner, source):
    execution = Execution.new(code="x", limits=Limits(timeout_seconds=5, memory_mb=128), backend="kubernetes")
    return execution.model_copy(update={"owner": owner, "source": source})


RESOURCE = {"metadata": {"namespace": "team-a", "name": "plot", "uid": "uid-1"}, "status": {"executionId": "e1"}}


@pytest.mark.parametrize(
    ("execution", "its_own"),
    [
        (record(owner_of("team-a"), "uid-1"), True),
        (record(owner_of("team-b"), "uid-1"), False),  # another namespace's execution
        (record(owner_of("team-a"), "uid-0"), False),  # an earlier resource of the same name
        (record(owner_of("team-a"), None), False),
        (record("key-0123", "uid-1"), False),  # an API key's execution, named by a patched status
    ],
)
def test_only_the_execution_the_resource_submitted_is_served(execution, its_own):
    assert is_execution_of(execution, RESOURCE) is its_own


def test_the_execution_a_resource_names_is_read_from_its_status():
    assert execution_id_of(RESOURCE) == "e1"
    assert execution_id_of({"status": {}}) is None
    assert execution_id_of({"status": {"executionId": ""}}) is None
    assert execution_id_of({"status": {"executionId": ["e1"]}}) is None
    assert execution_id_of({}) is None


def test_the_api_path_quotes_each_part():
    assert artifact_api_path("team-a", "plot", "plots/a b.png") == (
        "/v1/executionrequests/team-a/plot/artifacts/plots/a%20b.png"
    )
