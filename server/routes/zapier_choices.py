"""``/zapier/choices/<source>``: dropdown choices (``[{id, name}]``) read from the connection's GHL
account, for the Zapier app's dynamic dropdowns."""

from flask import Blueprint

blueprint = Blueprint("zapier_choices", __name__)
