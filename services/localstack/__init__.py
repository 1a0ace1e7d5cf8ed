"""The local stack: every vizsearch component on 127.0.0.1, from embedded servers,
as supervised processes under one run directory (`make up`, `make down`, `make status`)."""
