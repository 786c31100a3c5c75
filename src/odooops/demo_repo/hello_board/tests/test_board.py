from odoo.tests.common import TransactionCase


class TestBoard(TransactionCase):
    def test_board_counts_its_notes(self):
        board = self.env["hello.board"].create({"name": "Ideas"})
        self.env["hello.note"].create([{"name": "a", "board_id": board.id}, {"name": "b", "board_id": board.id}])
        self.assertEqual(board.note_count, 2)
