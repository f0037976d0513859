"""Publication: disclosure control (`disclosure`), what is released and how (`release`) and the
HTML evaluation report (`report`)."""
