def test_x(client, db):
    assert client.get("/nope/").status_code == 404
