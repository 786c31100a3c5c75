from odoo import api, fields, models


class HelloNote(models.Model):
    _name = "hello.note"
    _description = "Note"
    _inherit = ["mail.thread"]
    _order = "name"

    name = fields.Char(required=True, tracking=True)
    body = fields.Text()
    words = fields.Integer(compute="_compute_words", store=True)

    @api.depends("body")
    def _compute_words(self):
        for note in self:
            note.words = len((note.body or "").split())
