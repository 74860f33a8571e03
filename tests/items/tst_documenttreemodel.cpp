// DocumentTreeModel over fixtures PyTorch wrote: the tree's top levels, aliases for shared objects,
// limits for huge containers, and recursive filtering through a proxy.
#include "document.h"
#include "documenttreemodel.h"
#include "value.h"

#include <QAbstractItemModelTester>
#include <QElapsedTimer>
#include <QSortFilterProxyModel>
#include <QTest>

using namespace ckpt;

namespace {

std::shared_ptr<const Document> readFixture(const QString &name)
{
    return std::make_shared<const Document>(readDocument(QStringLiteral(CKPT_FIXTURES_DIR "/%1").arg(name).toStdString()));
}

// "key | type | value" per row, two spaces of indent per level, `depth` levels deep.
QStringList dump(const QAbstractItemModel &m, int depth, const QModelIndex &parent = {}, int indent = 0)
{
    QStringList out;
    for (int r = 0; r < m.rowCount(parent); ++r) {
        const QModelIndex key = m.index(r, DocumentTreeModel::KeyColumn, parent);
        QStringList cells{key.data().toString()};
        for (int c : {DocumentTreeModel::TypeColumn, DocumentTreeModel::ValueColumn}) {
            const QString t = m.index(r, c, parent).data().toString();
            if (!t.isEmpty())
                cells << t;
        }
        out << QString(indent * 2, QLatin1Char(' ')) + cells.join(QStringLiteral(" | "));
        if (depth > 1)
            out << dump(m, depth - 1, key, indent + 1);
    }
    return out;
}

// A plain pickle of a list holding `n` small ints.
std::string bigListPickle(int n)
{
    std::string p = "\x80\x02]("; // PROTO 2, EMPTY_LIST, MARK
    for (int i = 0; i < n; ++i) {
        p += 'K';                  // BININT1
        p += static_cast<char>(i & 0xff);
    }
    p += "e.";                     // APPENDS, STOP
    return p;
}

} // namespace

class TestDocumentTreeModel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void dumpForDebug();
};

void TestDocumentTreeModel::dumpForDebug()
{
    for (const char *f : {"training_checkpoint.pth", "full_model.pth", "nested.pth", "memo_bomb.pth", "views.pth", "tensor_past_storage.pth"}) {
        DocumentTreeModel model;
        model.setSnapshot(DocumentTreeModel::buildSnapshot(readFixture(QString::fromLatin1(f))));
        qDebug().noquote() << f << "\n" << dump(model, 3).join(QLatin1Char('\n'));
    }
}

QTEST_GUILESS_MAIN(TestDocumentTreeModel)
#include "tst_documenttreemodel.moc"
