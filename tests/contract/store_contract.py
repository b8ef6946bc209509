"""The contract every metadata store must pass, driven through the SDK and services as a user would.

``StoreContract`` is not collected by itself (no ``Test`` prefix); each store's module subclasses
it and supplies ``database_url``: ``None`` keeps the workspace's own SQLite file, a URL is set in
``SMALT_DATABASE_URL`` the way a team points smalt at PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from smalt import MLClient
from smalt.entities import Compute, Data, Datastore, Model
from smalt.entities.datastore import DatastoreCredentials
from smalt.errors import BackendError, InvalidStateError, NotFoundError, VersionConflictError
from smalt.services import WorkspaceContext, open_workspace
from smalt.store import SqlMetadataStore
from smalt.store.access import AssignmentRecord, PrincipalRecord, TokenRecord
from smalt.store.migrate import HEAD

ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5LXRoYXQtbXVzdC1uZXZlci1sZWFr"


class StoreContract:
    """Behaviour of the metadata store that users rely on, whatever database holds it."""

    # -- fixtures --------------------------------------------------------------------------
    @pytest.fixture
    def database_url(self) -> str | None:
        """The database to use; ``None`` is the workspace's default (SQLite in its folder)."""
        return None

    @pytest.fixture
    def database(self, database_url: str | None, monkeypatch: pytest.MonkeyPatch) -> str | None:
        if database_url is not None:
            monkeypatch.setenv("SMALT_DATABASE_URL", database_url)
        return database_url

    @pytest.fixture
    def client(self, database: str | None, workspace_path: Path) -> Iterator[MLClient]:
        client = MLClient(workspace=workspace_path)
        yield client
        client.close()

    @pytest.fixture
    def context(self, client: MLClient, workspace_path: Path) -> Iterator[WorkspaceContext]:
        """The same workspace opened through the services, for what the SDK does not show."""
        context = open_workspace(workspace_path)
        yield context
        context.close()

    @pytest.fixture
    def files(self, tmp_path: Path) -> Path:
        folder = tmp_path / "files"
        folder.mkdir()
        for index in range(1, 6):
            (folder / f"part{index}.csv").write_text(f"a,b\n{index},{index * 10}\n")
        return folder

    @staticmethod
    def data(files: Path, index: int = 1, version: str | None = None, **fields: Any) -> Data:
        return Data(name="iris", path=str(files / f"part{index}.csv"), type="uri_file", version=version, **fields)

    # -- versions --------------------------------------------------------------------------
    def test_versions_are_numbered_1_2_3_when_none_is_given(self, client: MLClient, files: Path) -> None:
        created = [client.data.create_or_update(self.data(files, i)).version for i in (1, 2, 3)]

        assert created == ["1", "2", "3"]
        assert [d.version for d in client.data.list("iris")] == ["3", "2", "1"]

    def test_auto_version_continues_after_the_highest_explicit_integer(self, client: MLClient, files: Path) -> None:
        client.data.create_or_update(self.data(files, 1))
        client.data.create_or_update(self.data(files, 2, version="7"))
        client.data.create_or_update(self.data(files, 3, version="v1.0"))

        assert client.data.create_or_update(self.data(files, 4)).version == "8"
        assert client.data.create_or_update(self.data(files, 5)).version == "9"

    def test_auto_version_after_a_lower_explicit_one_does_not_reuse_a_number(
        self, client: MLClient, files: Path
    ) -> None:
        for index in (1, 2, 3):
            client.data.create_or_update(self.data(files, index))
        client.data.create_or_update(self.data(files, 4, version="2.5"))

        assert client.data.create_or_update(self.data(files, 5)).version == "4"

    def test_a_non_integer_version_is_accepted_and_read_back(self, client: MLClient, files: Path) -> None:
        created = client.data.create_or_update(self.data(files, 1, version="v1.0"))

        assert created.version == "v1.0"
        assert client.data.get("iris", version="v1.0").path == created.path
        assert client.data.get("iris", label="latest").version == "v1.0"

    def test_same_version_with_same_content_is_a_no_op(self, client: MLClient, files: Path) -> None:
        first = client.data.create_or_update(self.data(files, 1, version="1", description="first"))
        again = client.data.create_or_update(self.data(files, 1, version="1", description="first"))

        assert again.version == "1"
        assert first.creation_context is not None and again.creation_context is not None
        assert again.creation_context.created_at == first.creation_context.created_at
        assert [d.version for d in client.data.list("iris")] == ["1"]

    def test_same_version_with_other_content_conflicts_and_changes_nothing(self, client: MLClient, files: Path) -> None:
        first = client.data.create_or_update(self.data(files, 1, version="1", description="first"))

        with pytest.raises(VersionConflictError) as raised:
            client.data.create_or_update(self.data(files, 2, version="1", description="second"))

        assert "iris:1" in str(raised.value)
        stored = client.data.get("iris", version="1")
        assert (stored.path, stored.description) == (first.path, "first")
        assert [d.version for d in client.data.list("iris")] == ["1"]
        # The conflict did not use up a number either.
        assert client.data.create_or_update(self.data(files, 3)).version == "2"

    def test_conflict_on_a_description_alone(self, client: MLClient, files: Path) -> None:
        client.data.create_or_update(self.data(files, 1, version="1", description="first"))

        with pytest.raises(VersionConflictError):
            client.data.create_or_update(self.data(files, 1, version="1", description="changed"))

        assert client.data.get("iris", version="1").description == "first"

    # -- reading ---------------------------------------------------------------------------
    def test_get_by_version_and_by_label_latest(self, client: MLClient, files: Path) -> None:
        one = client.data.create_or_update(self.data(files, 1, description="one"))
        client.data.create_or_update(self.data(files, 2, description="two"))

        assert client.data.get("iris", version="1").description == "one"
        assert client.data.get("iris", version=1).path == one.path
        assert client.data.get("iris", label="latest").description == "two"

    def test_latest_is_the_most_recently_created_not_the_highest(self, client: MLClient, files: Path) -> None:
        client.data.create_or_update(self.data(files, 1, version="10"))
        client.data.create_or_update(self.data(files, 2, version="2"))

        assert client.data.get("iris", label="latest").version == "2"

    def test_list_gives_every_name_once_and_every_version_of_one_name_newest_first(
        self, client: MLClient, files: Path
    ) -> None:
        for index in (1, 2, 3):
            client.data.create_or_update(self.data(files, index))
        client.data.create_or_update(Data(name="wine", path=str(files / "part4.csv"), type="uri_file"))
        client.data.create_or_update(Data(name="adult", path=str(files / "part5.csv"), type="uri_file"))

        names = {d.name: d.version for d in client.data.list()}
        assert names == {"adult": "1", "iris": "3", "wine": "1"}
        assert [d.version for d in client.data.list(name="iris")] == ["3", "2", "1"]

    def test_other_kinds_do_not_share_names_or_numbers(self, client: MLClient, files: Path) -> None:
        from smalt.entities import Model

        client.data.create_or_update(self.data(files, 1))
        client.data.create_or_update(self.data(files, 2))
        model = client.models.create_or_update(Model(name="iris", path=str(files / "part3.csv")))

        assert model.version == "1"
        assert [d.name for d in client.models.list()] == ["iris"]
        assert [d.version for d in client.data.list("iris")] == ["2", "1"]

    def test_not_found_lists_the_existing_versions(self, client: MLClient, files: Path) -> None:
        client.data.create_or_update(self.data(files, 1))
        client.data.create_or_update(self.data(files, 2))

        with pytest.raises(NotFoundError) as raised:
            client.data.get("iris", version="9")

        assert "'iris:9' not found" in str(raised.value)
        assert "Versions: 1, 2" in str(raised.value)

    def test_not_found_for_an_unknown_name_suggests_a_close_one(self, client: MLClient, files: Path) -> None:
        client.data.create_or_update(self.data(files, 1))

        with pytest.raises(NotFoundError, match="Did you mean 'iris'"):
            client.data.get("irsi", label="latest")
        with pytest.raises(NotFoundError, match="irsi"):
            client.data.list(name="irsi")

    # -- archive and restore ---------------------------------------------------------------
    def test_archived_version_is_hidden_from_list_and_latest_but_gettable(self, client: MLClient, files: Path) -> None:
        for index in (1, 2, 3):
            client.data.create_or_update(self.data(files, index, description=f"v{index}"))

        client.data.archive("iris", version="3")

        assert [d.version for d in client.data.list("iris")] == ["2", "1"]
        assert [d.version for d in client.data.list("iris", include_archived=True)] == ["3", "2", "1"]
        assert client.data.get("iris", label="latest").version == "2"
        assert {d.name: d.version for d in client.data.list()} == {"iris": "2"}
        assert client.data.get("iris", version="3").description == "v3"

    def test_archived_versions_keep_their_numbers(self, client: MLClient, files: Path) -> None:
        client.data.create_or_update(self.data(files, 1))
        client.data.create_or_update(self.data(files, 2))
        client.data.archive("iris", version="2")

        assert client.data.create_or_update(self.data(files, 3)).version == "3"

    def test_archiving_the_whole_asset_hides_its_name(self, client: MLClient, files: Path) -> None:
        client.data.create_or_update(self.data(files, 1))
        client.data.create_or_update(self.data(files, 2))
        client.data.create_or_update(Data(name="wine", path=str(files / "part3.csv"), type="uri_file"))

        client.data.archive("iris")

        assert [d.name for d in client.data.list()] == ["wine"]
        assert sorted(d.name for d in client.data.list(include_archived=True)) == ["iris", "wine"]
        assert client.data.list("iris") == []
        with pytest.raises(NotFoundError):
            client.data.get("iris", label="latest")
        assert client.data.get("iris", version="1").version == "1"

    def test_restore_a_version_and_a_whole_asset(self, client: MLClient, files: Path) -> None:
        client.data.create_or_update(self.data(files, 1))
        client.data.create_or_update(self.data(files, 2))

        client.data.archive("iris", version="2")
        client.data.restore("iris", version="2")
        assert client.data.get("iris", label="latest").version == "2"
        assert [d.version for d in client.data.list("iris")] == ["2", "1"]

        client.data.archive("iris")
        client.data.restore("iris")
        assert [d.name for d in client.data.list()] == ["iris"]
        assert client.data.get("iris", label="latest").version == "2"

    def test_restoring_a_version_of_an_archived_asset_says_restore_the_asset(
        self, client: MLClient, files: Path
    ) -> None:
        client.data.create_or_update(self.data(files, 1))
        client.data.archive("iris")

        with pytest.raises(InvalidStateError, match="restore"):
            client.data.restore("iris", version="1")

    def test_archive_of_an_unknown_version_or_name_is_not_found(self, client: MLClient, files: Path) -> None:
        client.data.create_or_update(self.data(files, 1))

        with pytest.raises(NotFoundError, match="Versions: 1"):
            client.data.archive("iris", version="4")
        with pytest.raises(NotFoundError):
            client.data.archive("nothing")

    # -- datastores ------------------------------------------------------------------------
    def test_every_workspace_has_its_default_datastore(self, client: MLClient) -> None:
        default = client.datastores.get_default()

        assert default.name == "workspaceblobstore"
        assert [d.name for d in client.datastores.list()] == ["workspaceblobstore"]

    def test_datastore_create_replace_get_list_delete(self, client: MLClient, tmp_path: Path) -> None:
        (tmp_path / "raw").mkdir()
        (tmp_path / "raw2").mkdir()
        created = client.datastores.create_or_update(
            Datastore(name="raw", type="local", path=str(tmp_path / "raw"), description="first")
        )
        replaced = client.datastores.create_or_update(
            Datastore(name="raw", type="local", path=str(tmp_path / "raw2"), description="second")
        )

        got = client.datastores.get("raw")
        assert (got.description, got.path) == ("second", str(tmp_path / "raw2"))
        assert created.creation_context is not None and replaced.creation_context is not None
        assert replaced.creation_context.created_at == created.creation_context.created_at
        assert [d.name for d in client.datastores.list()] == ["raw", "workspaceblobstore"]

        client.datastores.delete("raw")

        assert [d.name for d in client.datastores.list()] == ["workspaceblobstore"]
        with pytest.raises(NotFoundError, match="Datastore 'raw' not found"):
            client.datastores.get("raw")
        with pytest.raises(NotFoundError):
            client.datastores.delete("raw")

    def test_default_datastore_cannot_be_deleted(self, client: MLClient) -> None:
        with pytest.raises(InvalidStateError):
            client.datastores.delete("workspaceblobstore")

        assert client.datastores.get("workspaceblobstore").is_default

    def test_datastore_secrets_are_encrypted_at_rest_and_never_returned(
        self, client: MLClient, context: WorkspaceContext
    ) -> None:
        created = client.datastores.create_or_update(
            Datastore(
                name="lake", type="azure_blob", account_name="acct", container_name="raw",
                credentials=DatastoreCredentials(account_key=ACCOUNT_KEY),
            )
        )  # fmt: skip

        assert created.credentials is not None and created.credentials.account_key is None
        got = client.datastores.get("lake")
        assert got.credentials is not None
        assert (got.credentials.type, got.credentials.account_key) == ("account_key", None)
        assert ACCOUNT_KEY not in repr(client.datastores.list())

        with context.store.engine.connect() as connection:
            row = connection.execute(text("SELECT spec, secrets FROM datastores WHERE name = 'lake'")).one()
        raw_spec = row.spec if isinstance(row.spec, str) else repr(row.spec)
        assert ACCOUNT_KEY not in raw_spec
        assert row.secrets is not None and ACCOUNT_KEY not in row.secrets
        assert context.secrets.open(row.secrets) == {"account_key": ACCOUNT_KEY}

    # -- computes --------------------------------------------------------------------------
    def test_compute_create_replace_get_list_delete(self, client: MLClient) -> None:
        created = client.compute.begin_create_or_update(Compute(name="cpu", max_instances=2)).result()
        client.compute.begin_create_or_update(Compute(name="cpu", max_instances=8, description="bigger")).result()

        got = client.compute.get("cpu")
        assert (got.max_instances, got.description) == (8, "bigger")
        assert got.creation_context is not None and created.creation_context is not None
        assert got.creation_context.created_at == created.creation_context.created_at
        assert [c.name for c in client.compute.list()] == ["local", "cpu"]

        client.compute.delete("cpu")

        assert [c.name for c in client.compute.list()] == ["local"]
        with pytest.raises(NotFoundError, match="Compute 'cpu' not found"):
            client.compute.get("cpu")

    def test_local_compute_always_exists(self, client: MLClient) -> None:
        assert client.compute.get("local").type == "local"
        with pytest.raises(InvalidStateError):
            client.compute.delete("local")

    # -- opening ---------------------------------------------------------------------------
    def test_opening_again_keeps_everything_and_migrates_nothing(
        self, client: MLClient, files: Path, workspace_path: Path
    ) -> None:
        client.data.create_or_update(self.data(files, 1))

        with MLClient(workspace=workspace_path) as second, MLClient(workspace=workspace_path) as third:
            assert [d.version for d in second.data.list("iris")] == ["1"]
            assert second.data.create_or_update(self.data(files, 2)).version == "2"
            assert [d.version for d in third.data.list("iris")] == ["2", "1"]
            assert [d.name for d in third.datastores.list()] == ["workspaceblobstore"]

        context = open_workspace(workspace_path)
        try:
            with context.store.engine.connect() as connection:
                revisions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            assert revisions == [HEAD]
        finally:
            context.close()

    def test_two_stores_open_on_one_database_see_each_other(self, context: WorkspaceContext, files: Path) -> None:
        other = SqlMetadataStore(context.database_url)
        try:
            with context.store.transaction(write=True) as tx:
                tx.assets.create_version("data", "shared", None, {"path": "x", "type": "uri_file"}, "d1", "me")
            with other.transaction(write=True) as tx:
                record, created = tx.assets.create_version(
                    "data", "shared", None, {"path": "y", "type": "uri_file"}, "d2", "me"
                )
            assert (record.version, created) == ("2", True)
            with context.store.transaction() as tx:
                assert tx.assets.version_names("data", "shared") == ["1", "2"]
        finally:
            other.close()

    # -- lineage ---------------------------------------------------------------------------
    def test_lineage_walks_both_ways_and_environments_keep_their_first_record(
        self, context: WorkspaceContext
    ) -> None:
        from smalt.store import Edge

        with context.store.transaction(write=True) as tx:
            tx.lineage.add([
                Edge("data:raw:1", "job:prep", "input", "raw"), Edge("job:prep", "job:train", "input", "data"),
                Edge("job:train", "model:m:1", "output", "model"), Edge("data:other:1", "job:unrelated", "input"),
            ])  # fmt: skip
            tx.lineage.record_environment("d" * 64, "3.11.7", ["numpy==2.1.0"])
            tx.lineage.record_environment("d" * 64, "3.12.0", ["other==1"])  # a later record is ignored
        with context.store.transaction() as tx:
            up = tx.lineage.walk("model:m:1", upstream=True)
            down = tx.lineage.walk("data:raw:1", upstream=False)
            environments = tx.lineage.environments(["d" * 64, "missing"])
        assert [(e.src, e.dst) for e in up] == [("job:train", "model:m:1"), ("job:prep", "job:train"),
                                                ("data:raw:1", "job:prep")]  # fmt: skip
        assert {e.dst for e in down} == {"job:prep", "job:train", "model:m:1"}
        assert environments == {"d" * 64: {"python": "3.11.7", "packages": ["numpy==2.1.0"]}}

    def test_alias_moves_are_kept_with_who_and_when(self, client: MLClient, files: Path) -> None:
        first = client.models.create_or_update(Model(name="m", path=str(files / "part1.csv")))
        second = client.models.create_or_update(Model(name="m", path=str(files / "part2.csv")))
        client.models.set_alias("m", "production", version=first.version)
        client.models.set_alias("m", "production", version=first.version)  # no move: nothing recorded
        client.models.set_alias("m", "production", version=second.version)
        client.models.remove_alias("m", "production")
        moves = client.models.alias_history("m")
        assert [(m.previous_version, m.version) for m in moves] == [(None, "1"), ("1", "2"), ("2", None)]
        assert all(m.set_by for m in moves)
        assert client.models.aliases("m") == []

    # -- online endpoints ----------------------------------------------------------------------
    def test_endpoints_and_deployments_are_replaced_changed_and_deleted_together(
        self, context: WorkspaceContext
    ) -> None:
        with context.store.transaction(write=True) as tx:
            tx.endpoints.put("e", {"name": "e", "traffic": {}}, "me", secrets="sealed", runtime={"port": 1},
                             provisioning_state="Creating")  # fmt: skip
            for name in ("green", "blue"):
                tx.endpoints.put_deployment("e", name, {"name": name}, "me", runtime={}, provisioning_state="Creating")
            tx.endpoints.put("other", {"name": "other"}, "me", secrets=None, runtime={}, provisioning_state="Succeeded")
            tx.endpoints.put_deployment("other", "blue", {}, "me", runtime={}, provisioning_state="Failed")
        with context.store.transaction(write=True) as tx:
            tx.endpoints.set("e", provisioning_state="Succeeded", spec={"name": "e", "traffic": {"blue": 100}})
            tx.endpoints.set_deployment("e", "blue", runtime={"generation": "g1"}, provisioning_state="Succeeded")
            created = tx.endpoints.get("e")
            replaced = tx.endpoints.put("e", {"name": "e", "traffic": {"blue": 100}}, "someone else", secrets="new",
                                        runtime={"port": 1, "version": 2}, provisioning_state="Succeeded")  # fmt: skip
        assert created is not None and created.spec["traffic"] == {"blue": 100}
        assert replaced.created_by == "me" and replaced.secrets == "new" and replaced.runtime["version"] == 2
        with context.store.transaction() as tx:
            assert [d.name for d in tx.endpoints.deployments("e")] == ["blue", "green"]
            blue = tx.endpoints.get_deployment("e", "blue")
            assert blue is not None and blue.runtime == {"generation": "g1"} and blue.provisioning_state == "Succeeded"
            assert [e.name for e in tx.endpoints.list()] == ["e", "other"]
        with context.store.transaction(write=True) as tx:
            tx.endpoints.delete_deployment("e", "green")
            tx.endpoints.delete("other")
        with context.store.transaction() as tx:
            assert [d.name for d in tx.endpoints.deployments("e")] == ["blue"]
            assert tx.endpoints.get("other") is None and tx.endpoints.deployments("other") == []

    # -- access control ------------------------------------------------------------------------
    @staticmethod
    def principal(name: str, kind: str = "user") -> PrincipalRecord:
        return PrincipalRecord(str(uuid.uuid4()), name, kind, f"$argon2id$hash-of-{name}", datetime.now(UTC), "admin")

    @staticmethod
    def audit_row(at: datetime, action: str, principal: str = "ada", **fields: Any) -> dict[str, Any]:
        return {"at": at, "principal": principal, "action": action, "resource": "/r", "outcome": "succeeded",
                "status": 200, "request_id": "req", "client": "127.0.0.1", "workspace": None, **fields}  # fmt: skip

    def test_principals_are_found_by_name_and_by_id_and_deleted_with_what_is_theirs(
        self, context: WorkspaceContext
    ) -> None:
        ada, ci = self.principal("ada"), self.principal("ci", "service_principal")
        now = datetime.now(UTC)
        with context.store.transaction() as tx:
            assert not tx.access.any_principal()
        with context.store.transaction(write=True) as tx:
            tx.access.add_principal(ci)
            tx.access.add_principal(ada)
            tx.access.add_token(TokenRecord("t" * 16, ada.id, "laptop", "0" * 64, now, now + timedelta(days=1), None))
            tx.access.add_assignment(AssignmentRecord(str(uuid.uuid4()), ada.id, "Reader", "/", now, "admin"))
            tx.access.add_assignment(AssignmentRecord(str(uuid.uuid4()), ci.id, "Reader", "/", now, "admin"))
        with context.store.transaction(write=True) as tx:
            assert tx.access.any_principal()
            assert tx.access.principal(name="ada") == ada
            assert tx.access.principal(id=ci.id) == ci
            assert tx.access.principal(name="grace") is None and tx.access.principal(id=ada.name) is None
            assert [p.name for p in tx.access.principals()] == ["ada", "ci"]
            tx.access.set_secret(ada.id, "$argon2id$new")
        with context.store.transaction(write=True) as tx:
            found = tx.access.principal(name="ada")
            assert found is not None and found.secret_hash == "$argon2id$new" and found.created_at == ada.created_at
            tx.access.delete_principal(ada.id)
        with context.store.transaction() as tx:
            assert [p.name for p in tx.access.principals()] == ["ci"]
            assert tx.access.tokens() == [] and tx.access.token("t" * 16) is None
            assert [a.principal_id for a in tx.access.assignments()] == [ci.id]

    def test_a_principal_name_is_taken_once(self, context: WorkspaceContext) -> None:
        with context.store.transaction(write=True) as tx:
            tx.access.add_principal(self.principal("ada"))

        with pytest.raises(BackendError), context.store.transaction(write=True) as tx:
            tx.access.add_principal(self.principal("ada", "service_principal"))

        with context.store.transaction() as tx:
            assert [p.kind for p in tx.access.principals()] == ["user"]

    def test_a_token_is_revoked_once_and_keeps_its_times(self, context: WorkspaceContext) -> None:
        ada, ci = self.principal("ada"), self.principal("ci", "service_principal")
        created = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        first = TokenRecord("a" * 16, ada.id, "laptop", "1" * 64, created, created + timedelta(days=30), None)
        second = TokenRecord("b" * 16, ada.id, "ci", "2" * 64, created + timedelta(seconds=1),
                             created + timedelta(days=1), None)  # fmt: skip
        other = TokenRecord("c" * 16, ci.id, "laptop", "3" * 64, created + timedelta(seconds=2),
                            created + timedelta(days=1), None)  # fmt: skip
        with context.store.transaction(write=True) as tx:
            for record in (ada, ci):
                tx.access.add_principal(record)
            for token in (first, second, other):
                tx.access.add_token(token)
        revoked_at = created + timedelta(hours=1)

        with context.store.transaction(write=True) as tx:
            assert tx.access.revoke_token(first.id, revoked_at)
            assert not tx.access.revoke_token(first.id, revoked_at + timedelta(hours=1))
            assert not tx.access.revoke_token("0" * 16, revoked_at)

        with context.store.transaction() as tx:
            assert tx.access.token(first.id) == TokenRecord(**{**first.__dict__, "revoked_at": revoked_at})
            assert tx.access.token(second.id) == second
            assert tx.access.token("0" * 16) is None
            assert [t.id for t in tx.access.tokens()] == [first.id, second.id, other.id]
            assert [t.id for t in tx.access.tokens(ada.id)] == [first.id, second.id]
            assert tx.access.tokens("nobody") == []

    def test_roles_are_put_replaced_and_deleted(self, context: WorkspaceContext) -> None:
        spec = {"Name": "Runner", "Actions": ["Microsoft.MachineLearningServices/workspaces/jobs/*"],
                "NotActions": [], "AssignableScopes": ["/"], "IsCustom": True}  # fmt: skip
        at = datetime(2026, 1, 1, tzinfo=UTC)
        with context.store.transaction(write=True) as tx:
            tx.access.put_role("Runner", spec, at, "admin")
            tx.access.put_role("Auditor", {**spec, "Name": "Auditor"}, at, "admin")
        with context.store.transaction(write=True) as tx:
            tx.access.put_role("Runner", {**spec, "Description": "changed"}, at + timedelta(days=1), "someone else")

        with context.store.transaction(write=True) as tx:
            runner = tx.access.role("Runner")
            assert runner is not None and runner.spec == {**spec, "Description": "changed"}
            assert (runner.created_at, runner.created_by) == (at, "admin")
            assert [r.name for r in tx.access.roles()] == ["Auditor", "Runner"]
            assert tx.access.role("Janitor") is None
            assert tx.access.delete_role("Auditor")
            assert not tx.access.delete_role("Auditor")
        with context.store.transaction() as tx:
            assert [r.name for r in tx.access.roles()] == ["Runner"]

    def test_assignments_filter_by_principal_and_role(self, context: WorkspaceContext) -> None:
        ada, ci = self.principal("ada"), self.principal("ci", "service_principal")
        at = datetime(2026, 1, 1, tzinfo=UTC)
        made = [
            AssignmentRecord("1" * 8, ada.id, "Reader", "/", at, "admin"),
            AssignmentRecord("2" * 8, ci.id, "Reader", "/workspaces/ws1", at + timedelta(seconds=1), "admin"),
            AssignmentRecord("3" * 8, ada.id, "Contributor", "/workspaces/ws1", at + timedelta(seconds=2), "admin"),
            AssignmentRecord("4" * 8, ada.id, "Reader", "/workspaces/ws1", at + timedelta(seconds=3), "admin"),
        ]
        with context.store.transaction(write=True) as tx:
            for record in made:
                tx.access.add_assignment(record)

        with context.store.transaction(write=True) as tx:
            assert tx.access.assignments() == made
            assert [a.id for a in tx.access.assignments(principal_id=ada.id)] == ["1" * 8, "3" * 8, "4" * 8]
            assert [a.id for a in tx.access.assignments(role="Reader")] == ["1" * 8, "2" * 8, "4" * 8]
            assert [a.id for a in tx.access.assignments(principal_id=ada.id, role="Reader")] == ["1" * 8, "4" * 8]
            assert tx.access.assignments(principal_id=ci.id, role="Contributor") == []
            assert tx.access.delete_assignment("1" * 8)
            assert not tx.access.delete_assignment("1" * 8)
        with pytest.raises(BackendError), context.store.transaction(write=True) as tx:
            # One role once per principal and scope.
            tx.access.add_assignment(AssignmentRecord("5" * 8, ada.id, "Contributor", "/workspaces/ws1", at, "x"))
        with context.store.transaction() as tx:
            assert [a.id for a in tx.access.assignments()] == ["2" * 8, "3" * 8, "4" * 8]

    def test_audit_appends_many_and_lists_newest_first_with_filters(self, context: WorkspaceContext) -> None:
        start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        rows = [
            self.audit_row(start, "Microsoft.Authorization/principals/write"),
            self.audit_row(start + timedelta(minutes=1), "Microsoft.MachineLearningServices/workspaces/jobs/write",
                           workspace="ws1"),  # fmt: skip
            self.audit_row(start + timedelta(minutes=2), "Microsoft.Authorization/roleAssignments/write", "ci"),
            self.audit_row(start + timedelta(minutes=3), "Microsoft.MachineLearningServices/workspaces/jobs/read",
                           "ci", outcome="denied", status=403),  # fmt: skip
        ]
        with context.store.transaction(write=True) as tx:
            tx.access.append_audit(rows[:3])
            tx.access.append_audit([])
        with context.store.transaction(write=True) as tx:
            tx.access.append_audit(rows[3:])

        with context.store.transaction() as tx:
            every = tx.access.audit()
            assert [(e.at, e.action) for e in every] == [(r["at"], r["action"]) for r in reversed(rows)]
            assert [e.id for e in every] == sorted((e.id for e in every), reverse=True)
            assert (every[0].outcome, every[0].status, every[0].principal, every[0].client) == (
                "denied", 403, "ci", "127.0.0.1")  # fmt: skip
            assert [e.workspace for e in every] == [None, None, "ws1", None]
            assert [e.at for e in tx.access.audit(since=start + timedelta(minutes=2))] == [
                start + timedelta(minutes=3), start + timedelta(minutes=2)]  # fmt: skip
            assert [e.principal for e in tx.access.audit(principal="ci")] == ["ci", "ci"]
            assert tx.access.audit(principal="CI") == []
            jobs = tx.access.audit(action="microsoft.machinelearningservices/WORKSPACES/jobs/")
            assert [e.action.rpartition("/")[2] for e in jobs] == ["read", "write"]
            assert [e.action for e in tx.access.audit(action="Microsoft.Authorization/", principal="ada")] == [
                "Microsoft.Authorization/principals/write"]  # fmt: skip
            assert len(tx.access.audit(since=start + timedelta(seconds=30), action="Microsoft.Authorization")) == 1
            assert [e.at for e in tx.access.audit(limit=2)] == [start + timedelta(minutes=3),
                                                               start + timedelta(minutes=2)]  # fmt: skip

    def test_an_audit_action_filter_matches_percent_and_underscore_literally(self, context: WorkspaceContext) -> None:
        at = datetime(2026, 3, 1, tzinfo=UTC)
        actions = ["a%b/write", "aXb/write", "a_b/write", "aYb/write", "a\\b/write", "ab/write"]
        with context.store.transaction(write=True) as tx:
            tx.access.append_audit([self.audit_row(at, a) for a in actions])

        with context.store.transaction() as tx:
            assert [e.action for e in tx.access.audit(action="a%b")] == ["a%b/write"]
            assert [e.action for e in tx.access.audit(action="a_b")] == ["a_b/write"]
            assert [e.action for e in tx.access.audit(action="a\\b")] == ["a\\b/write"]
            assert [e.action for e in tx.access.audit(action="%")] == []
            assert [e.action for e in tx.access.audit(action="_")] == []
            assert len(tx.access.audit(action="a")) == len(actions)

    def test_audit_since_in_another_time_zone_is_the_same_instant(self, context: WorkspaceContext) -> None:
        """``smalt audit list --since`` and ``GET /audit?since=`` pass the time as given: one with an
        offset names the same instant as its UTC form, on every database."""
        start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        with context.store.transaction(write=True) as tx:
            tx.access.append_audit([self.audit_row(start + timedelta(hours=h), f"a/{h}") for h in range(4)])
        paris = timezone(timedelta(hours=2))

        with context.store.transaction() as tx:
            in_utc = [e.action for e in tx.access.audit(since=start + timedelta(hours=2))]
            in_paris = [e.action for e in tx.access.audit(since=(start + timedelta(hours=2)).astimezone(paris))]
        assert in_utc == ["a/3", "a/2"]
        assert in_paris == in_utc, f"since 14:00 UTC written as 16:00+02:00 gave {in_paris}"
