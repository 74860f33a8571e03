// The security view's "Called with" column for unknown globals too: a class of the user's code is
// imported and called by Python with the arguments the file holds, which the reader can show.
#include "document.h"
#include "security.h"
#include "securityview.h"

#include <QStandardItemModel>
#include <QtTest>

using namespace ckpt;

class TestSecurityCalls : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void unknownGlobalShowsItsCall()
    {
        // {'net': mylib.models.Net('resnet', 7)}, as pickletools.dis reads it: PROTO 2, EMPTY_DICT,
        // SHORT_BINUNICODE 'net', GLOBAL 'mylib.models Net', SHORT_BINUNICODE 'resnet', BININT1 7,
        // TUPLE2, REDUCE, SETITEM, STOP.
        const std::string pickle = std::string("\x80\x02}\x8c\x03net") + "cmylib.models\nNet\n" + "\x8c\x06resnet" +
                                   "K\x07" + "\x86R" + "s.";
        const auto doc = readDocumentFromBytes(pickle, "net.pkl");
        const auto report = securityReport(doc);
        QVERIFY(!report.dangerous);
        SecurityView view;
        view.setReport(std::make_shared<const SecurityReport>(report), false, &doc);
        bool found = false;
        for (int r = 0; r < view.model()->rowCount(); ++r) {
            if (view.model()->item(r, SecurityView::NameColumn)->text() != QStringLiteral("mylib.models.Net"))
                continue;
            found = true;
            QCOMPARE(view.model()->item(r, SecurityView::VerdictColumn)->text(), QStringLiteral("unknown"));
            const QString call = view.model()->item(r, SecurityView::CallColumn)->text();
            QVERIFY2(call.contains(QStringLiteral("'resnet'")) && call.contains(QStringLiteral("7")), qPrintable(call));
            QVERIFY2(call.contains(QStringLiteral("net")), qPrintable(call));  // where: the dict key
        }
        QVERIFY(found);
    }
};

QTEST_MAIN(TestSecurityCalls)
#include "tst_securitycalls.moc"
