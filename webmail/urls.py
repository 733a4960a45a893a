from django.urls import include, path

from webmail.views import auth, compose, events, folders, mail, recycle, security, settings

app_name = "webmail"

urlpatterns = [
    path("", mail.home, name="home"),
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("login/code/", security.login_totp, name="login_totp"),
    path("settings/", settings.settings_view, name="settings"),
    path("settings/filters/", include("webmail.views.filters")),
    path("settings/recycle-bin/", recycle.recycle_bin, name="recycle_bin"),
    path("settings/security/", security.security, name="security"),
    path("settings/security/sessions/end/", security.end_session, name="end_session"),
    path("settings/security/password/", security.change_password, name="change_password"),
    path("settings/security/app-passwords/", security.app_password_create, name="app_password_create"),
    path("settings/security/app-passwords/revoke/", security.app_password_revoke, name="app_password_revoke"),
    path("settings/security/app-passwords/require/", security.require_app_passwords, name="require_app_passwords"),
    path("settings/security/two-factor/", security.totp_setup, name="totp_setup"),
    path("settings/security/two-factor/off/", security.totp_disable, name="totp_disable"),
    path("settings/security/two-factor/recovery-codes/", security.recovery_codes, name="recovery_codes"),
    path("f/<int:folder_id>/", mail.folder, name="folder"),
    path("f/<int:folder_id>/act/", mail.act, name="act"),
    path("trash/empty/", mail.empty_trash, name="empty_trash"),
    path("undo/", mail.undo, name="undo"),
    path("search/", mail.search, name="search"),
    path("m/<int:message_id>/", mail.message, name="message"),
    path("m/<int:message_id>/frame/<int:index>/", mail.frame, name="frame"),
    path("m/<int:message_id>/source/", mail.source, name="source"),
    path("m/<int:message_id>/delivery/", mail.delivery_status, name="delivery"),
    path("m/<int:message_id>/print/", mail.print_view, name="print"),
    path("m/<int:message_id>/part/<int:index>/", mail.attachment, name="attachment"),
    path("t/<uuid:thread_id>/", mail.thread, name="thread"),
    path("compose/", compose.compose_view, name="compose"),
    path("contacts/", compose.contacts, name="contacts"),
    path("folders/", folders.manage, name="folders"),
    path("folders/create/", folders.create, name="folder_create"),
    path("folders/<int:folder_id>/rename/", folders.rename, name="folder_rename"),
    path("folders/<int:folder_id>/delete/", folders.delete, name="folder_delete"),
    path("events/", events.events, name="events"),
]
