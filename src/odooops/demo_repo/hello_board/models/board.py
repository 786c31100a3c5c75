from odoo import api, fields, models


class HelloBoard(models.Model):
    _name = "hello.board"
    _description = "Board"

    name = fields.Char(required=True)
    note_ids = fields.One2many("hello.note", "board_id")
    note_count = fields.Integer(compute="_compute_note_count", store=True)

    @api.depends("note_ids")
    def _compute_note_count(self):
        for board in self:
            board.note_count = len(board.note_ids)


class HelloNote(models.Model):
    _inherit = "hello.note"

    board_id = fields.Many2one("hello.board", ondelete="set null")
