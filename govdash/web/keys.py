"""Names in a Streamlit session's state that more than one module reads, kept in one place and
without importing Streamlit (`govdash load` imports govdash.web.warm, which reads them).

The sign-in's: govdash.web.auth sets them; govdash.web.warm signs its page runs in with the
token and checks that a run found its principal (else the page was the sign-in form).
The 年度考评 page's level and year widgets: govdash.web.warm chooses them as a visitor does.
"""

PRINCIPAL_KEY = "principal"
TOKEN_KEY = "auth_session_token"  # this server session's sign-in token (never sent anywhere)
EVALUATION_LEVEL_KEY = "evaluation_level"
EVALUATION_YEAR_KEY = "evaluation_year"
