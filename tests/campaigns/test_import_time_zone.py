"""An import sets the contact's time zone (used by campaign send windows); a bad zone is left out
and reported like any invalid cell."""
from __future__ import annotations

import pytest

from outreach.imports.mapping import guess_mapping
from outreach.imports.services import CELL_CHECKS
from django.core.exceptions import ValidationError


def test_time_zone_columns_map_themselves():
    mapping = guess_mapping(["Email", "First Name", "Time zone"])
    assert mapping[2] == "time_zone"
    assert guess_mapping(["E-mail", "Zeitzone"])[1] == "time_zone"


def test_time_zone_cells_are_checked():
    assert CELL_CHECKS["time_zone"](" America/New_York ") == "America/New_York"
    with pytest.raises(ValidationError, match="Unknown time zone"):
        CELL_CHECKS["time_zone"]("Mars/Olympus")
