"""The facts every suite shares: where the sample catalog is, which statuses end a job, the test tokens' claims."""

from pathlib import Path

# The checkout: the test kit is installed from it in editable mode (``make setup``), never copied.
REPO_ROOT = Path(__file__).resolve().parents[2]
# The sample catalog shipped in examples/: the seed's 12 columns and its awkward cases.
SEED_CSV = REPO_ROOT / "examples" / "movies.csv"
# A job in one of these has ended: its worker is done with it (a revert may follow).
FINISHED = frozenset({"Success", "Failure", "Cancelled"})

# The claims the services under test are configured to expect of a token.
TEST_ISSUER = "catalog-auth"
TEST_AUDIENCE = "catalog-api"

# The seed's twelve columns, as examples/movies.csv has them.
MOVIE_COLUMNS = ("show_id", "type", "title", "director", "cast", "country", "date_added", "release_year",
                 "rating", "duration", "listed_in", "description")  # fmt: skip
