from tests.logscan import personal_data_in


def test_the_scan_finds_bsns_names_and_contact_details() -> None:
    leaks = personal_data_in(
        [
            "ingested batch read=5000 applied=4990",
            "person 999993653 released",  # a valid BSN
            "event 123456789 applied",  # nine digits failing the 11-proef: not a BSN
            "victim Slachtoffer 000001 registered",
            "mail to s1@example.org",
            "took 1.234567891 s",
        ]
    )
    assert leaks == [
        "person 999993653 released",
        "victim Slachtoffer 000001 registered",
        "mail to s1@example.org",
    ]
