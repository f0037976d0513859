import pandas as pd

from sim_pipeline.quality.identifiers import find_identifier_like


def test_identifier_scan_flags_names_and_shapes_but_not_tokens():
    df = pd.DataFrame(
        {
            "NHSNumberStatus": ["01"],
            "NHSNumber": ["x"],
            "AddressPostcode": ["x"],
            "free_text": ["9990000018"],
            "note": ["SE15 4QT"],
            "nhs_number_token": ["9990000018"],
            "postcode_district": ["SE15"],
            "Generated_Record_ID": ["9990000018"],
        },
        dtype="string",
    )
    found = find_identifier_like(df)
    assert found == {
        "NHSNumber": {"identifier_column_name": 1},
        "AddressPostcode": {"identifier_column_name": 1},
        "free_text": {"nhs_number_shaped": 1},
        "note": {"full_postcode_shaped": 1},
        # no column is exempt: a token column holds its hex form or is flagged, and a record
        # key is searched too ...
        "nhs_number_token": {"token_format": 1},
        "Generated_Record_ID": {"nhs_number_shaped": 1},
    }
    # ... unless named as a record key: then only the batch's own identifiers count for it
    keyed = find_identifier_like(df, record_keys=["Generated_Record_ID"])
    assert "Generated_Record_ID" not in keyed and "nhs_number_token" in keyed


def test_identifier_scan_passes_clean_frames():
    df = pd.DataFrame({"a": ["1234567890", "SE15"], "b": [1, 2]})  # invalid check digit
    assert find_identifier_like(df) == {}
