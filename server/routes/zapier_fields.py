"""``/zapier/fields/<key>``: an operation's custom fields, loaded from the connection's GHL account,
as Zapier input or output field descriptors (Zapier dynamic fields)."""

from flask import Blueprint

blueprint = Blueprint("zapier_fields", __name__)
