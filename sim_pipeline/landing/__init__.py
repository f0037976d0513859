"""The landing folder: its layout (<source>/<YYYY-MM>/<table>.csv), change detection for the
sensor (`watch`) and the synthetic landing's manifest that gates the public demo key (`manifest`)."""
