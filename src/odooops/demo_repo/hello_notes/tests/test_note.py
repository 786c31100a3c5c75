from odoo.tests.common import TransactionCase


class TestNote(TransactionCase):
    def test_words_counted(self):
        note = self.env["hello.note"].create({"name": "Three", "body": "one two three"})
        self.assertEqual(note.words, 3)

    def test_words_follow_the_body(self):
        note = self.env["hello.note"].create({"name": "Empty"})
        self.assertEqual(note.words, 0)
        note.body = "now two"
        self.assertEqual(note.words, 2)

    def test_demo_note(self):
        self.assertEqual(self.env.ref("hello_notes.note_welcome").words, 3)
