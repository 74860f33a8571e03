// The security view's words for builtins.getattr that only looks up an enum member (Python 3.11
// and later pickle them so): a notable row, not the dangerous banner.
#include "document.h"
#include "security.h"
#include "securityview.h"

#include <QLabel>
#include <QStandardItemModel>
#include <QtTest>

using namespace ckpt;

class TestSecurityLookup : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void enumLookupIsExplained()
    {
        // {'k': getattr(mylib.Color, 'RED')}, as pickletools.dis reads it: PROTO 2, EMPTY_DICT,
        // SHORT_BINUNICODE 'k', GLOBAL '__builtin__ getattr', GLOBAL 'mylib Color',
        // SHORT_BINUNICODE 'RED', TUPLE2, REDUCE, SETITEM, STOP.
        const std::string pickle = std::string("\x80\x02}\x8c\x01k") + "c__builtin__\ngetattr\n" + "cmylib\nColor\n" +
                                   "\x8c\x03RED" + "\x86R" + "s.";
        const auto doc = readDocumentFromBytes(pickle, "enum.pkl");
        SecurityView view;
        view.setReport(std::make_shared<const SecurityReport>(securityReport(doc)));
        const QString verdict = view.verdict()->text();
        QVERIFY2(verdict.contains(QStringLiteral("No dangerous global")), qPrintable(verdict));
        QVERIFY2(verdict.contains(QStringLiteral("enum members")), qPrintable(verdict));
        QVERIFY2(verdict.contains(QStringLiteral("would refuse")), qPrintable(verdict));
        bool found = false;
        for (int r = 0; r < view.model()->rowCount(); ++r) {
            if (view.model()->item(r, SecurityView::NameColumn)->text() != QStringLiteral("builtins.getattr"))
                continue;
            found = true;
            QCOMPARE(view.model()->item(r, SecurityView::VerdictColumn)->text(), QStringLiteral("attribute lookup"));
            QCOMPARE(view.model()->item(r, SecurityView::WeightsOnlyColumn)->text(), QStringLiteral("refused"));
            QVERIFY(view.model()->item(r, SecurityView::ReasonColumn)->text().contains(QStringLiteral("enum")));
        }
        QVERIFY(found);
    }
};

QTEST_MAIN(TestSecurityLookup)
#include "tst_securitylookup.moc"
