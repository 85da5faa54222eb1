"""A person when the bot is not enough: conversations handed to the city's counsellors in a
Matrix room, and their replies back, for newcomers on Telegram and Matrix alike.

dialogue.py is what the newcomer reads (the engine uses it), detect.py notices a request for a
person, hours.py the configured answering hours, cases.py and tables.py the stored cases and
relays, relay.py the worker that carries messages both ways, figures.py the city's figures.
"""
