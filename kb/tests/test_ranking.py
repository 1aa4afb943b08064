"""The ranking pipeline on small content: what relates a paste to a section, and the shipped weights.

The guide below has two troubleshooting sections written alike but about different actions,
so only the entity features can tell them apart.
"""

import itertools
import json
import random

import pytest

from kb.guided.recommend import recommend
from kb.importer import import_content
from kb.models import Section
from kb.search import analyse, ranking, search
from kb.search.facts import Corpus
from kb.search.ranking import (
    FEATURES, FIRST_STAGE, HEAD_FEATURES, INDEX, SEMANTIC_FEATURES, Cascade, Model, Ranker, candidates, contradicts, entity_lookup, rank, shipped_ranker,
    specific_values,
)

ROLES = """\
# Troubleshooting role errors<a name="troubleshoot_roles"></a>

Fix the errors you see when you work with roles and pass them to services.

## I am not authorized to perform iam:PassRole<a name="passrole"></a>

If you get an access denied error that says you are not authorized to perform an action on a role, check
the policies attached to your user. The caller needs permission for iam:PassRole on the role
before a service can use it. Ask your administrator to update your permissions.

## I can't switch to a role<a name="assume"></a>

If you get an access denied error that says you are not authorized to perform an action on a role, check
the policies attached to your user. The caller needs permission for sts:AssumeRole on the role,
and the role's trust policy must name the caller. Ask your administrator to update your permissions.

## Denied by a permissions boundary<a name="boundary"></a>

An access denied error that says no permissions boundary allows the action means the boundary set on
the user or role leaves the action out.

## Denied by a service control policy<a name="scp"></a>

An access denied error with an explicit deny in a service control policy means an SCP of your
organization denies the action.

## Key not found<a name="kms-notfound"></a>

The NotFoundException error means the KMS key is missing or in another Region.
"""

ASSUME_DENIAL = (
    "An error occurred (AccessDenied) when calling the AssumeRole operation: User: "
    "arn:aws:iam::111122223333:user/dev is not authorized to perform: sts:AssumeRole on resource: "
    "arn:aws:iam::444455556666:role/deploy"
)
PASSROLE_DENIAL = (
    "User: arn:aws:iam::111122223333:user/dev is not authorized to perform: iam:PassRole on resource: "
    "arn:aws:iam::111122223333:role/lambda-exec"
)


@pytest.fixture
def roles(db, write_guide):
    import_content([write_guide("g", {"troubleshoot_roles.md": ROLES})])


def anchors(results) -> list[str]:
    return [r.section.anchor for r in results]


def features_of(text: str) -> dict[str, list[float]]:
    scored, _ = candidates(analyse(text))
    return {s.facts.title: s.features for s in scored}


def test_a_heading_about_another_action_contradicts_the_paste(roles):
    by_title = features_of(ASSUME_DENIAL)
    contradiction = INDEX["contradicts_heading"]
    assert by_title["I am not authorized to perform iam:PassRole"][contradiction] == 1
    assert by_title["I can't switch to a role"][contradiction] == 0


def test_contradiction_is_decided_per_kind_of_entity():
    query = analyse(ASSUME_DENIAL)
    assert contradicts(query, frozenset({"action:iam:passrole"}))
    assert not contradicts(query, frozenset({"action:sts:assumerole", "operation:assumerole"}))
    # A heading that names only an error code the paste does not carry is not "about another call".
    assert not contradicts(analyse("is not authorized to perform: sts:AssumeRole"), frozenset({"code:notfound"}))


def test_the_section_about_the_pastes_action_comes_first_though_both_share_its_words(roles):
    assert anchors(search(ASSUME_DENIAL).results)[0] == "assume"
    assert anchors(search(PASSROLE_DENIAL).results)[0] == "passrole"


def test_the_policy_type_the_denial_names_picks_its_section(roles):
    boundary = "User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject because no permissions boundary allows the s3:GetObject action"
    scp = "User: arn:aws:iam::1:user/a is not authorized to perform: s3:GetObject with an explicit deny in a service control policy"
    assert anchors(search(boundary).results)[0] == "boundary"
    assert anchors(search(scp).results)[0] == "scp"


def test_sections_about_the_pastes_code_are_candidates_through_the_entity_lookup(roles):
    query = analyse("KMS.NotFoundException: Invalid keyId")
    assert "code:notfound" in specific_values(query)
    found = entity_lookup(specific_values(query))
    assert Section.objects.get(anchor="kms-notfound").pk in found
    scored, _ = candidates(query)
    by_anchor = {Section.objects.get(pk=s.section_id).anchor: s.features for s in scored}
    assert by_anchor["kms-notfound"][INDEX["entity_candidate"]] == 1


def test_every_score_is_the_sum_of_its_shown_contributions(roles):
    for entry in rank(analyse(ASSUME_DENIAL)):
        assert entry.score == pytest.approx(sum(entry.contributions))


def test_reasons_name_the_entities_that_moved_the_section(roles):
    item = recommend(ASSUME_DENIAL).items[0]
    assert item.section.anchor == "assume"
    assert any("sts:AssumeRole" in reason for reason in item.why), item.why
    assert not any("iam:PassRole" in reason for reason in item.why)


def test_where_the_corpus_documents_the_pastes_entities_weighs_the_same_in_every_process(monkeypatch):
    # A set of strings iterates in another order in each process (their hashes are seeded per
    # process): summed in that order, the shares would differ in their last bits from one
    # worker to the next, and near ties would fall either way.
    shares = {"action:svc:a": {"g": 0.1}, "action:svc:b": {"g": 0.2}, "action:svc:c": {"g": 0.3}}
    monkeypatch.setattr(ranking, "corpus", lambda: Corpus({}, {}, {}, shares))
    query = analyse("AccessDenied")
    found = {ranking.EntityStats.for_query(query, order).entity_share("g") for order in itertools.permutations(shares)}
    assert len(found) == 1


def test_the_shipped_weights_load_with_a_cascade_for_each_stage():
    ranker = shipped_ranker()
    for cascade in (ranker.semantic, ranker.lexical):
        assert cascade.first.features == FEATURES and cascade.head.features == HEAD_FEATURES
        assert all(w == w and abs(w) < 100 for w in cascade.first.weights + cascade.head.weights)
    assert any(ranker.semantic.first.weights[INDEX[name]] for name in SEMANTIC_FEATURES)
    assert ranker.lexical.ignores_semantic()


def test_the_head_model_reorders_the_first_models_best_and_keeps_them_on_top(monkeypatch):
    monkeypatch.setattr(ranking, "HEAD_CANDIDATES", 2)
    first = Model(FEATURES, tuple(1.0 if name == "lexical" else 0.0 for name in FEATURES))
    head = Model(HEAD_FEATURES, tuple(1.0 if name == "semantic" else 0.0 for name in HEAD_FEATURES))
    rows = [[0.0] * len(FEATURES) for _ in range(4)]
    for row, (lexical, semantic) in zip(rows, [(0.9, 0.1), (0.8, 0.2), (0.5, 0.9), (0.1, 0.0)]):
        row[INDEX["lexical"]], row[INDEX["semantic"]] = lexical, semantic
    ordered = Cascade(first, head).order(rows, [0, 1, 2, 3])
    assert [i for i, _, _ in ordered] == [1, 0, 2, 3]  # 2 is close in meaning, but the first model left it out
    scores = [score for _, score, _ in ordered]
    assert scores == sorted(scores, reverse=True)
    assert ordered[2][2][INDEX["lexical"]] == 0.5  # the rest keep the first model's contributions


def test_the_cascades_scores_never_rise_down_its_order():
    # Recommend re-sorts by score after its adjustments: with none, the order must not change,
    # though the head's lift can land a floating-point step below the rest's best.
    cascade = ranking.shipped_ranker().semantic
    rng = random.Random(7)
    for _ in range(300):
        rows = [[rng.random() for _ in FEATURES] for _ in range(12)]
        scores = [score for _, score, _ in cascade.order(rows, list(range(12)))]
        assert scores == sorted(scores, reverse=True)


def test_the_head_models_weights_fold_the_first_models_score_into_the_features():
    first = Model(FEATURES, tuple(2.0 if name == "lexical" else 0.0 for name in FEATURES))
    head = Model(HEAD_FEATURES, tuple({"semantic": 1.0, FIRST_STAGE: 0.5}.get(name, 0.0) for name in HEAD_FEATURES))
    weights = Cascade(first, head).head_weights
    assert weights[INDEX["lexical"]] == 1.0 and weights[INDEX["semantic"]] == 1.0


def test_weights_for_an_unknown_feature_are_refused():
    data = {"features": ["lexical", "no_such_feature"], "weights": [1.0, 2.0]}
    with pytest.raises(ValueError, match="no_such_feature"):
        Model.from_json(data)


def test_a_lexical_model_that_weighs_semantic_features_is_refused():
    model = {"features": ["lexical", "semantic"], "weights": [1.0, 1.0]}
    cascade = {"first": {"features": ["lexical"], "weights": [1.0]}, "head": model}
    with pytest.raises(ValueError, match="semantic"):
        Ranker.from_json({"semantic": cascade, "lexical": cascade})


def test_a_feature_added_since_the_fit_counts_for_nothing_until_the_next():
    model = Model.from_json({"features": ["lexical"], "weights": [2.0]})
    assert model.weights[INDEX["lexical"]] == 2.0
    assert sum(abs(w) for w in model.weights) == 2.0
    assert json.loads(json.dumps(model.to_json()))["features"] == list(FEATURES)


def test_a_heading_that_spells_out_the_pastes_code_or_call_in_words_is_marked(roles):
    by_title = features_of("An error occurred (KMS.NotFoundException) when calling the Decrypt operation: Invalid keyId")
    spelled = INDEX["heading_code_words"]
    assert by_title["Key not found"][spelled] == 1
    assert not any(row[spelled] for title, row in by_title.items() if title != "Key not found")
    by_title = features_of("User: arn:aws:iam::111122223333:user/dev is not authorized to perform: sts:SwitchRole on x")
    assert by_title["I can't switch to a role"][INDEX["heading_operation_words"]] == 1


def test_a_heading_the_paste_accounts_for_outranks_one_about_something_it_never_mentions(roles):
    by_title = features_of("An access denied error says no permissions boundary allows the action")
    boundary, scp = by_title["Denied by a permissions boundary"], by_title["Denied by a service control policy"]
    assert boundary[INDEX["heading_precision"]] > scp[INDEX["heading_precision"]]
    assert boundary[INDEX["heading_unmatched"]] < scp[INDEX["heading_unmatched"]]
    # Every section of the article shares its title, so the title's words count the same for each.
    assert boundary[INDEX["article_precision"]] == scp[INDEX["article_precision"]]


def test_rare_heading_words_weigh_more_than_common_ones():
    words = (("saml", 6.0), ("troub", 1.0))
    assert ranking.heading_match({"troub"}, words) == pytest.approx((1 / 7, 6 / ranking.UNMATCHED_RARITY))
    assert ranking.heading_match({"saml"}, words) == pytest.approx((6 / 7, 1 / ranking.UNMATCHED_RARITY))
    assert ranking.heading_match(set(), words * 10) == (0.0, 1.0)
    assert ranking.heading_match({"saml"}, ()) == (0.0, 0.0)


def test_a_subsection_moved_by_its_articles_title_says_so_only_then(roles):
    # A ranker that weighs only the article title's match: its reason line shows for the
    # subsections it moved, and not when the same ranker gives that feature no weight.
    def ranker(weight: float) -> Ranker:
        weights = tuple(weight if name == "article_precision" else 0.0 for name in FEATURES)
        cascade = Cascade(Model(FEATURES, weights), Model(HEAD_FEATURES, (*weights, 1.0)))
        return Ranker(cascade, cascade)

    with ranking.using(ranker(1.0)):
        items = recommend(ASSUME_DENIAL).items
    subsections = [item for item in items if item.section.level > 1]
    assert subsections and all("Its article's title matches: role" in item.why for item in subsections)
    with ranking.using(ranker(0.0)):
        assert not any("article's title" in reason for item in recommend(ASSUME_DENIAL).items for reason in item.why)
