"""fluxworld: an MMO world server whose game rules are pure reducers."""
