"""What answers each threat the model finds: a control (the brief's S-requirement, the whitepaper's
PC/IC ids) with the tests that fail when it is broken, or an acceptance with its reason and owner.

Keyed by threat id (pytm's library and `threats.py`); one response covers every element the
threat is found on. A test is named `path/to/test_file.py::test_function`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Control:
    requirement: str  # S1..S14, or R1 (retention) from docs/threat-model.md
    whitepaper: str  # PC/IC ids, "" where none applies
    how: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Accepted:
    reason: str
    owner: str


Response = Control | Accepted

# Tests several families share.
FRAME_AUTH = "meteragent/tests/test_protocol_frame.py::test_every_single_bit_flip_is_rejected"
FORGED_FRAMES = "smsgateway/tests/test_rejections.py::test_forged_truncated_and_oversized_frames"
PARSER_PROPERTY = (
    "meteragent/tests/test_protocol_properties.py::test_random_bytes_only_raise_protocol_errors"
)
PDU_GARBAGE = "meteragent/tests/test_pdu.py::test_garbage_only_ever_raises_pdu_error"
CSP = "utility/tests/test_security_headers.py::test_pages_carry_a_strict_content_security_policy"
NO_INLINE = (
    "utility/tests/test_security_headers.py::test_base_template_has_no_inline_script_or_style"
)
COOKIES = "utility/tests/test_security_headers.py::test_production_cookie_and_transport_settings"
DEPLOY = "utility/tests/test_settings.py::test_deploy_check_is_clean_under_production_settings"
BAD_PARAMS = "accounts/customers/tests/test_portal_usage.py::test_bad_parameters_are_a_clear_400"
HOSTILE_IMPORT = "devices/tests/test_import.py::test_hostile_or_broken_files_get_a_clear_reason"
ACCESS_MATRIX = "accounts/customers/tests/test_api_access.py::test_access_matrix"
ROLES = "accounts/tests/test_roles.py::test_migrate_creates_every_role_with_exactly_its_permissions"
ROLE_DRIFT = "accounts/tests/test_roles.py::test_sync_removes_a_permission_granted_by_hand"
PASSWORD_ALONE = "accounts/tests/test_staff_2fa.py::test_password_alone_never_opens_a_staff_url"
STAFF_LOCKOUT = "accounts/tests/test_staff_2fa.py::test_password_guessing_locks_the_account_out"
CUSTOMER_LOCKOUT = (
    "accounts/customers/tests/test_customer_signup.py::test_login_lockout_after_failures_is_audited"
)
GATEWAY_SECRET = "smsgateway/tests/test_rejections.py::test_the_gateway_must_know_the_secret"
GATEWAY_ADDRESS = (
    "smsgateway/tests/test_rejections.py::test_the_gateway_must_come_from_an_allowed_address"
)
OVERSIZED_BODY = (
    "smsgateway/tests/test_rejections.py::test_an_oversized_request_body_is_refused_before_storing"
)
AUDIT_EDIT = "audit/tests/test_chain.py::test_an_edited_record_is_named"
AUDIT_DB = "audit/tests/test_chain.py::test_the_database_refuses_updates_and_deletes"
DEVICE_CAPS = "devices/tests/test_caps.py::test_a_mass_rotation_over_the_cap_is_refused_whole"
RETENTION_WINDOWS = "readings/tests/test_retention.py::test_nothing_inside_the_windows_is_touched"
RETENTION_SUMS = (
    "readings/tests/test_retention.py::test_daily_aggregates_equal_the_hourly_sums_they_replace"
)
RETENTION_SHOWN = (
    "readings/tests/test_retention.py::test_each_step_is_audited_and_shown_to_the_customer"
)
RETENTION_REFUSED = "readings/tests/test_retention.py::test_a_policy_reaching_into_the_windows_is_refused_audited_and_changes_nothing"
SIGNED_UPDATE = "meteragent/tests/test_update.py::test_unsigned_or_altered_packages_are_refused_before_unpacking"

INPUT_HANDLING = Control(
    "S3, S9, S10",
    "PC03, IC08, IC16",
    "frames are authenticated before a byte is parsed; web input goes through forms, the ORM "
    "(parameterised SQL) and auto-escaping templates under a CSP without unsafe-inline",
    (PARSER_PROPERTY, FORGED_FRAMES, BAD_PARAMS, HOSTILE_IMPORT, CSP),
)
SCRIPT_INJECTION = Control(
    "S10",
    "IC16",
    "auto-escaping templates, a CSP without unsafe-inline, CSV cells that cannot start a formula",
    (
        CSP,
        NO_INLINE,
        "accounts/customers/tests/test_portal_usage.py::test_csv_cells_cannot_start_a_formula",
    ),
)
BOUNDS = Control(
    "S3, S9",
    "PC03, IC08",
    "memory-safe Python; every length is checked: 2 KiB webhook bodies, 140-byte frames, PDU "
    "and concatenation limits, fuzzed (meteragent/fuzz)",
    (
        OVERSIZED_BODY,
        PDU_GARBAGE,
        PARSER_PROPERTY,
        "meteragent/tests/test_update.py::test_an_oversized_package_is_refused_before_it_is_read",
    ),
)
SOURCE_AUTHENTICATION = Control(
    "S3, S9, S10, S11",
    "PC01, IC01, IC15, IC23",
    "meters by AEAD under their own key, the gateway by secret and address, people by argon2 "
    "password, lockout and (staff) TOTP",
    (FRAME_AUTH, GATEWAY_SECRET, PASSWORD_ALONE, CUSTOMER_LOCKOUT),
)
ACCESS_CONTROL = Control(
    "S11",
    "IC23",
    "one group per role with exactly its permissions; ownership or consent checked on every "
    "customer URL; KEK private half only on the sms workers",
    (
        ROLES,
        ROLE_DRIFT,
        ACCESS_MATRIX,
        "devices/tests/test_admin_permissions.py::test_devices_pages_follow_the_role_table",
    ),
)
SESSIONS = Control(
    "S10",
    "IC17, IC18",
    "Django sessions: random ids, Secure/HttpOnly __Host- cookies, 8 h lifetime, CSRF tokens; "
    "staff sessions need TOTP",
    (COOKIES, PASSWORD_ALONE),
)
CHANNEL = Control(
    "S3, S6, S9",
    "PC01, PC02, IC01, IC24",
    "every meter message is AES-256-GCM end to end whatever the hops; browser, API and gateway "
    "traffic TLS with HSTS; hops inside the box or the host are local",
    (
        FRAME_AUTH,
        "meteragent/tests/test_protocol_frame.py::test_nothing_identifying_in_clear",
        DEPLOY,
    ),
)
AUDIT = Control(
    "S13",
    "IC12, IC13",
    "HMAC-chained records, append-only trigger, scheduled verification",
    (AUDIT_EDIT, AUDIT_DB, "audit/tests/test_chain.py::test_a_deleted_record_is_named"),
)
FLOODING = Control(
    "S9, S12",
    "",
    "bounded bodies and queues at the webhook, rate limits and caps on every critical action, "
    "ingest separated from batch work by queue",
    (
        OVERSIZED_BODY,
        DEVICE_CAPS,
        "accounts/customers/tests/test_customer_signup.py::test_signup_rate_limited_per_meter_number",
        "smsgateway/tests/test_outbox.py::test_a_meter_gets_no_more_than_its_daily_cap",
    ),
)
NO_XML = Accepted(
    "no XML, SOAP, LDAP or PHP anywhere in the system; pytm's rule fires on every process that "
    "does not say so",
    "Security admin",
)

RESPONSES: dict[str, Response] = {
    # --- pytm library: authentication
    "AA01": SOURCE_AUTHENTICATION,
    "AA02": SOURCE_AUTHENTICATION,
    "AA03": SOURCE_AUTHENTICATION,
    "AA04": INPUT_HANDLING,
    "CR03": Control(
        "S10",
        "IC15",
        "argon2, password policy, lockout per account and address",
        (
            STAFF_LOCKOUT,
            CUSTOMER_LOCKOUT,
            "accounts/tests/test_commands.py::test_passwords_are_hashed_with_argon2",
        ),
    ),
    "CR05": Control(
        "S1, S3",
        "PC01, IC06",
        "256-bit random root keys, AES-256-GCM, HKDF-derived per-purpose keys",
        (
            "devices/tests/test_key_custody.py::test_root_keys_are_random_and_unrelated_to_the_meter_number",
            "meteragent/tests/test_protocol_vectors.py::test_key_derivation_vectors",
        ),
    ),
    # --- access control and sessions
    **dict.fromkeys(
        ("AC01", "AC06", "AC07", "AC08", "AC09", "AC12", "AC13", "AC14", "AC15"), ACCESS_CONTROL
    ),
    **dict.fromkeys(("AC11", "AC16", "AC17", "AC18", "AC20", "AC21"), SESSIONS),
    # --- the channel
    **dict.fromkeys(("AC05", "CR06", "CR08", "DE01", "DE03"), CHANNEL),
    # --- input handling
    **dict.fromkeys(
        (
            "DE02",
            "DS01",
            "HA01",
            "INP03",
            "INP05",
            "INP08",
            "INP10",
            "INP11",
            "INP13",
            "INP14",
            "INP18",
            "INP23",
            "INP25",
            "INP26",
            "INP31",
            "INP33",
            "INP35",
            "INP41",
        ),
        INPUT_HANDLING,
    ),
    **dict.fromkeys(
        ("DS04", "INP17", "INP20", "INP27", "INP28", "INP29", "INP30", "SC02", "SC03", "SC04"),
        SCRIPT_INJECTION,
    ),
    **dict.fromkeys(("INP02", "INP07", "INP12", "INP24"), BOUNDS),
    **dict.fromkeys(("INP09", "INP16", "INP19", "INP21", "INP22", "INP32", "INP34"), NO_XML),
    "INP36": Control(
        "S9",
        "",
        "nginx normalises requests; the ingest service believes forwarded addresses only from the proxy and drops header names with underscores",
        (
            "smsgateway/tests/test_ingest_asgi.py::test_behind_the_proxy_the_forwarded_address_is_the_one_allowed",
            "smsgateway/tests/test_ingest_asgi.py::test_requests_not_from_our_gateway_are_refused_and_audited",
        ),
    ),
    "INP37": Control(
        "S9",
        "",
        "as INP36",
        (
            "smsgateway/tests/test_ingest_asgi.py::test_behind_the_proxy_the_forwarded_address_is_the_one_allowed",
        ),
    ),
    "DE04": AUDIT,
    **dict.fromkeys(("DO01", "DO02"), FLOODING),
    "HA03": Accepted(
        "the server software can be fingerprinted; nothing relies on hiding it, and `check --deploy` hardening is tested",
        "Security admin",
    ),
    "API01": Control(
        "S10",
        "IC16",
        "no test API is served; the API and its schema answer only with a valid token",
        (
            ACCESS_MATRIX,
            "accounts/customers/tests/test_api_access.py::test_openapi_schema_is_served_and_lists_the_endpoints",
        ),
    ),
    "SC05": Control(
        "S14", "PC15", "software updates are signed and checked before unpacking", (SIGNED_UPDATE,)
    ),
    # --- our threats: GSM and SMS
    "SMS01": Control(
        "S1, S3",
        "PC01, IC01",
        "the SIM only names the meter; a message must open under the meter's own key, so a cloned or swapped SIM without the key is rejected",
        (
            "smsgateway/tests/test_rejections.py::test_a_key_of_another_meter_does_not_open",
            FORGED_FRAMES,
            "smsgateway/tests/test_rejections.py::test_a_burst_of_failed_authentication_raises_an_alert",
        ),
    ),
    "SMS02": Control(
        "S3, S4, S6, S7",
        "PC01, PC02, PC04, PC05",
        "the SMSC sees only AEAD frames: alteration fails, replays fall outside the window, drops and delays show as silence",
        (
            FRAME_AUTH,
            "smsgateway/tests/test_ingest.py::test_the_same_frame_under_a_new_gateway_id_is_a_replay",
            "smsgateway/tests/test_alerts.py::test_a_silent_meter_is_flagged_once_and_cleared_when_heard",
        ),
    ),
    "SMS03": Control(
        "S3, S5, S6, S7",
        "PC01, PC02, PC05, IC22",
        "2G ciphering is not relied on: frames are end-to-end AEAD, forged downlinks are refused by the meter, a blocked meter raises a silence alert",
        (
            "meteragent/tests/test_agent.py::test_forged_replayed_and_stale_acks_change_nothing",
            "meteragent/tests/test_protocol_frame.py::test_nothing_identifying_in_clear",
            "smsgateway/tests/test_alerts.py::test_a_silent_meter_is_flagged_once_and_cleared_when_heard",
        ),
    ),
    "SMS04": Control(
        "S4, S5",
        "PC04, IC22",
        "acks are authenticated, answer the latest report and move the clock by at most 300 s",
        (
            "meteragent/tests/test_agent.py::test_forged_replayed_and_stale_acks_change_nothing",
            "meteragent/tests/test_protocol_timesync.py::test_large_error_is_bounded_and_reported",
        ),
    ),
    "GW01": Control(
        "S9",
        "",
        "shared secret in constant time, address allow-list, bounded body, stored raw before parsing",
        (GATEWAY_SECRET, GATEWAY_ADDRESS, OVERSIZED_BODY),
    ),
    # --- meter box and field
    "PHY01": Control(
        "S14",
        "PC13, PC16",
        "MACed, hash-chained store; counters never rewind with an older copy",
        (
            "meteragent/tests/test_store.py::test_edited_reading_is_detected_and_not_sent",
            "meteragent/tests/test_agent.py::test_an_older_copy_of_the_store_never_rewinds_the_uplink_counter",
        ),
    ),
    "PHY02": Control(
        "S14",
        "PC16",
        "detectors for drops, zero use and reversals against the meter's own history; field visits",
        (
            "fraud/tests/test_detectors.py::test_each_detector_fires_on_its_pattern_and_nowhere_else",
            "meteragent/tests/test_energy.py::test_reverse_energy_is_reported_not_subtracted",
        ),
    ),
    "PHY03": Control(
        "S14",
        "PC13",
        "console actions are logged and reported upstream; bundles are checked",
        (
            "meteragent/tests/test_console.py::test_status_readings_export_self_test_are_logged_and_reported",
            "meteragent/tests/test_console.py::test_a_tampered_bundle_is_refused",
        ),
    ),
    "PHY04": Control(
        "S14",
        "PC15",
        "signed updates, no downgrade",
        (
            SIGNED_UPDATE,
            "meteragent/tests/test_update.py::test_downgrade_and_missing_version_are_refused",
        ),
    ),
    "KEY01": Control(
        "S1, S12",
        "PC01, IC21",
        "a bundle is issued once per key, a second download withdraws the first, a meter in service gets none, downloads are capped",
        (
            "devices/tests/test_bundle.py::test_a_second_download_needs_a_new_key_and_withdraws_the_first",
            "devices/tests/test_bundle.py::test_a_meter_in_service_gets_no_bundle",
            "devices/tests/test_caps.py::test_mass_suspension_and_bundle_downloads_are_capped",
        ),
    ),
    "KEY02": Control(
        "S14",
        "PC16",
        "exports are signed by the meter and verified before they are merged",
        (
            "meteragent/tests/test_export.py::test_a_re_signed_edit_fails_with_the_meters_key",
            "fraud/tests/test_dispatch.py::test_bad_uploads_are_refused_and_store_nothing",
        ),
    ),
    "KEY03": Control(
        "S1",
        "IC06, IC10, IC21",
        "the KEK private half is held only by the sms workers; rewrap_device_keys moves every key under a new KEK after a leak",
        (
            "devices/tests/test_key_custody.py::test_the_web_front_end_issues_bundles_without_being_able_to_unwrap",
            "devices/tests/test_key_custody.py::test_rewrap_moves_every_key_to_a_new_kek_and_is_resumable",
        ),
    ),
    "KEY04": Control(
        "S1",
        "IC06, IC10",
        "a dump holds only wrapped keys bound to their meter",
        (
            "devices/tests/test_key_custody.py::test_a_database_dump_alone_decrypts_nothing",
            "devices/tests/test_key_custody.py::test_a_wrapped_key_moved_to_another_meter_does_not_open",
        ),
    ),
    # --- web and insiders
    "WEB01": Control(
        "S10, S12",
        "IC15, IC16",
        "no enumeration, rate limits, lockout, fleet-wide caps",
        (
            "accounts/customers/tests/test_customer_signup.py::test_signup_does_not_reveal_email_or_meter",
            CUSTOMER_LOCKOUT,
            "accounts/customers/tests/test_customer_signup.py::test_signups_fleet_wide_are_capped",
        ),
    ),
    "WEB02": Control(
        "S10",
        "IC16",
        "a one-time code shown on the meter's display is needed besides the sticker number",
        (
            "accounts/customers/tests/test_customer_claim.py::test_the_sticker_number_and_someone_elses_code_do_not_open_a_meter",
        ),
    ),
    "WEB03": Control(
        "S11",
        "IC23",
        "TOTP on every staff URL in the login step; used codes cannot be replayed",
        (PASSWORD_ALONE, "accounts/tests/test_staff_2fa.py::test_a_used_code_cannot_be_replayed"),
    ),
    "INS01": Control(
        "S12",
        "",
        "caps per critical action, counted from the audit log under a lock; dispatches over the cap wait for a second approver",
        (
            DEVICE_CAPS,
            "fraud/tests/test_dispatch.py::test_fleet_dispatch_cap_holds_further_dispatches",
        ),
    ),
    "INS02": AUDIT,
    "INS03": ACCESS_CONTROL,
    "CON01": Control(
        "S10",
        "IC16",
        "consent is one meter, at most 13 months back, expiring, revocable, and ends with the granting customer's occupancy",
        (
            "accounts/customers/tests/test_api_access.py::test_consent_limits_months_and_expires",
            "accounts/customers/tests/test_api_access.py::test_consent_ends_with_the_granting_customers_occupancy",
            "accounts/customers/tests/test_api_access.py::test_personal_token_revocation_and_garbage_tokens",
        ),
    ),
    "BIL01": Control(
        "S11",
        "IC23",
        "billing reads through a read-only role; reruns never double-bill; issued invoices immutable",
        (
            "billing/tests/test_db_roles.py::test_billing_role_reads_readings_but_cannot_write_them",
            "billing/tests/test_billing.py::test_rerun_and_resume_never_double_bill",
        ),
    ),
    "FRD01": Control(
        "S7",
        "PC05",
        "detectors tell vacancy, declared absences, move-ins and solar from theft and tolerate "
        "missing days; a person decides every dispatch",
        (
            "fraud/tests/test_detection.py::test_a_two_week_holiday_is_vacancy_not_a_bypass",
            "fraud/tests/test_detection.py::test_a_declared_absence_never_raises_a_high_case",
            "fraud/tests/test_detection.py::test_innocent_changes_open_no_case",
            "fraud/tests/test_detectors.py::test_days_with_missing_readings_never_look_like_a_drop",
        ),
    ),
    # --- privacy (LINDDUN)
    "LDN01": Control(
        "R1",
        "",
        "hourly readings past the billing and dispute windows become daily totals and are deleted; old monthly partitions dropped",
        (
            RETENTION_WINDOWS,
            RETENTION_SUMS,
            "readings/tests/test_retention.py::test_old_partitions_are_dropped_and_never_recreated",
        ),
    ),
    "LDN02": Control(
        "S10, R1",
        "PC02",
        "readings only within the reader's own occupancy or consent; past the windows only daily totals remain",
        (
            ACCESS_MATRIX,
            "accounts/customers/tests/test_portal_usage.py::test_usage_before_the_occupancy_is_not_shown",
            RETENTION_SUMS,
        ),
    ),
    "LDN03": Control(
        "S6",
        "PC02",
        "fixed-size frames on a fixed schedule, nothing identifying in clear; the operator still sees which SIM sends",
        (
            "meteragent/tests/test_protocol_frame.py::test_every_frame_is_140_bytes_whatever_the_content",
            "meteragent/tests/test_protocol_frame.py::test_nothing_identifying_in_clear",
        ),
    ),
    "LDN04": Control(
        "R1",
        "",
        "the portal shows the retention policy and each retention step that reached the customer's data, and every consent granted",
        (
            RETENTION_SHOWN,
            "accounts/customers/tests/test_api_access.py::test_consent_granted_in_the_portal_works_until_revoked",
        ),
    ),
    "LDN05": Control(
        "R1",
        "",
        "windows are never touched and a policy reaching into them is refused; aggregates equal the hourly sums; each step audited",
        (RETENTION_WINDOWS, RETENTION_REFUSED, RETENTION_SUMS, RETENTION_SHOWN),
    ),
    "LDN06": Control(
        "S10",
        "IC16",
        "access ends with the occupancy; a move-in starts a new one",
        (
            "accounts/customers/tests/test_customer_claim.py::test_move_in_ends_the_previous_occupants_access",
            "accounts/customers/tests/test_api_access.py::test_consent_ends_with_the_granting_customers_occupancy",
        ),
    ),
}
