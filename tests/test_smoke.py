from tests.factories import PASSWORD, make_world


def test_login_and_dashboard(app, session, web):
    world = make_world(session)
    response = web.login(world.learner.email, PASSWORD)
    assert response.status_code == 302
    page = web.client.get("/")
    assert page.status_code == 200
    assert "Your units" in page.get_data(True)
